// Package check owns the judges: every check poolproof holds a client to
// (leaks, pool bounds and churn, fail-fast under exhaustion, timeouts,
// retries and backoff, Retry-After, the payment ledger, the breaker,
// isolation, recovery, body integrity), their ids and one-line docs (Docs),
// and the measurements they share (calls per phase, percentiles, the
// attempts the servers saw). The proxy checks (ProxyChecks, ProxyDocs)
// judge a reverse proxy between a well-behaved client and a service's
// replicas instead: upstream reuse and bound, the errors it hands the
// client, failover; the ledger and the attempts read the replicas of a
// service behind a proxy as one.
//
// A check is a pure function of a *harness.History: it reads nothing else,
// so a verdict can be recomputed from a saved history. Its exported fields
// are its bounds, zero meaning "from the contract the history declares"; a
// check is data, registered under its id (see harness.RegisterCheck), so a
// scenario holding it saves and loads as JSON.
package check
