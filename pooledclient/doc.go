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
// Retries and net/http's silent replays: Go's transport replays a request
// by itself, on another connection and without any delay, when a reused
// keep-alive connection fails in one of two ways:
//
//   - nothing of the request was written (the connection was already dead,
//     or it passed MaxLifetime and refused the write). The server cannot
//     have seen the request, so the replay is not an attempt in the sense of
//     the retry contract. It is allowed for every method (retirement
//     relies on it), and it is bounded, because it happens only on reused
//     connections.
//   - the request was written and the connection died before the first
//     byte of the response, for a replayable request (GET, HEAD, OPTIONS,
//     TRACE, or one with an Idempotency-Key). The server may have processed
//     it. net/http replays again on each pooled connection that dies the
//     same way, so against a server that resets some requests after reading
//     them, one call of MaxAttempts 3 reached the server 6 times, 2ms apart.
//
// The client refuses the second kind. The transport calls the Proxy hook
// before each connection it picks; the hook (gateReplay) checks whether the
// attempt's previous connection got bytes of the request and, if so, ends
// the attempt with the error that killed that connection (a reset or EOF,
// classified as such in errors and metrics). Do's own loop then retries if
// the request may be retried, with jittered backoff, the retry budget and
// the breaker. So every attempt the server can see is one of Do's attempts:
// at most MaxAttempts per call, spaced by backoff.
//
// Why not count the replays and allow them while attempts < MaxAttempts?
// They would still skip backoff, the budget and the breaker: a retry storm
// in miniature. Why not cancel the attempt's context from GotConn? By then
// the transport has taken a healthy connection and writes the request
// concurrently, so cancelling closes that connection and may still send
// the request. The Proxy hook runs before any connection is taken, costs no
// allocation, and leaves the pool untouched. The outcomes are counted in
// http_client_transport_replays_total{outcome="allowed"|"refused"}.
//
// With HTTP/2 the transport retries a stream (inside its own RoundTrip, with
// its own backoff after the first retry) only when the connection could not
// take it or the server refused it (REFUSED_STREAM, GOAWAY), plus a
// PROTOCOL_ERROR reset by the peer as a workaround for some servers; those
// replays are left to it.
package pooledclient
