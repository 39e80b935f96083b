// Package fakeservers owns the three fake services poolproof certifies
// clients against (payment, inventory, notification), all built on one
// instrumented server core. The core records the server-side truth the checks
// trust most (connections accepted and closed, requests per connection,
// attempts per X-Request-ID, charges per order), applies HTTP-level faults and
// keep-alive limits set at run time, and serves TLS with a CA it generates.
//
// It must not import the harness or the reference client.
//
// # Routes
//
//	payment       POST /v1/charges (ChargeRequest -> 201 Charge; Idempotency-Key replays the first charge)
//	              GET  /v1/charges/{id}
//	inventory     GET  /v1/items/{sku} (the hot path), POST /v1/reservations
//	notification  POST /v1/notifications (202, fire-and-forget)
//	every service GET  /v1/catalog?size=N (a large JSON body of exactly N bytes,
//	              default 64 KiB, at most 16 MiB: the route for slow and cut bodies)
//
// Every service response carries HeaderBodyDigest ("sha256=<hex>") and
// HeaderAttempt; VerifyDigest tells a whole body from a truncated one.
//
// # Faults
//
// Faults are checked in order for each request whose route and method they
// match. Each matching fault with a probability in (0,1) consumes one draw
// from a source seeded by Config.Seed, fired or not, so the same seed and the
// same request sequence give the same faults; Reset reseeds. Delay faults add
// up; the first other fault that fires shapes the answer. For HTTP/1.1 a
// fault that ends the exchange early closes the connection (process_then_fail
// with then "reset" sends a TCP RST); HTTP/2 can only reset the stream
// (RST_STREAM), the connection survives.
//
// # Keep-alive
//
// KeepAlive can change at run time. For HTTP/1.1 the server's own idle and
// header deadlines are used, read afresh for every idle period and request.
// HTTP/2 has no header deadline; its idle timeout is a timer that closes the
// connection without a GOAWAY (as a middlebox dropping idle connections
// would). MaxRequestsPerConn answers the Nth request with Connection: close
// (HTTP/1.1) or a GOAWAY (HTTP/2).
//
// # Records
//
// A request's outcome (status, fault, order) is recorded before its answer is
// written, so Stats read after a client saw the answer includes it; Finished
// is zero until the handler returns. Status 0 means no response was sent.
// History grows until Reset; each request record is kept in 72 bytes plus its ids.
package fakeservers
