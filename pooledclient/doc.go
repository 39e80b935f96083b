// Package pooledclient is poolproof's reference HTTP client: the model a team
// copies for talking to its downstream services.
//
// It owns one Client per downstream service (payment, inventory,
// notification...), each with its own connection pool and limits, gathered in
// a Pool. A Client bounds the connections it opens (MaxConnsPerHost), fails
// fast with ErrPoolExhausted when no connection frees up within PoolWait
// (net/http alone queues without bound), pre-dials MinConns connections,
// retires connections older than MaxLifetime without failing a call, retries
// idempotent calls with capped, jittered exponential backoff under a retry
// budget while honouring Retry-After, and stops calling a failing service with
// a circuit breaker (ErrCircuitOpen). Every connection is tracked from dial to
// close, so the Prometheus metrics are exact, not sampled.
//
// Accounting notes that differ by protocol:
//
//   - HTTP/1.1: one call uses one connection, so MaxConnsPerHost bounds both
//     the calls in flight and the connections open.
//   - HTTP/2 (Config.HTTP2): calls are multiplexed as streams over few
//     connections (usually one per host). MaxConnsPerHost still bounds the
//     calls in flight (the pool-wait slots) and the connections dialled, but
//     a connection is "active" while at least one stream is in flight, and
//     Warm opens a single connection however large MinConns is.
//
// Go's transport silently replays a request on a fresh connection when a
// reused keep-alive connection turns out dead before any byte of the request
// was written, or when the request is idempotent or carries an
// Idempotency-Key header. For keyed requests that is safe by construction
// (the server deduplicates on the key); non-idempotent requests without a key
// are never retried by this package.
package pooledclient
