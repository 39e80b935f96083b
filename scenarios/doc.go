// Package scenarios is poolproof's catalog: named scenarios, each a
// workload, a fault schedule and the checks (with bounds taken from the
// client's declared Profile) that judge it. It is data only: it runs
// nothing itself; harness.Certify runs it, from the suites and the CLI.
//
// Standard is the full certification; Quick is a subset with shorter
// durations for fast feedback. Proxy (with ProxyQuick and ProxySoak) is the
// catalog that certifies a reverse proxy between the reference client and
// the services' replicas (see package proxy), held to what its
// configuration promises (ProxyOptions). Every fault goes through Toxiproxy's API or
// the fake services' admin API, so a scenario runs unchanged on every
// environment.
//
// # Toxiproxy facts the schedules rely on
//
//   - A toxic's toxicity is drawn once per connection, not per request: with
//     a few pooled connections, 0.3 means "some connections", forever. Where
//     a per-request probability is meant, the schedules use the fake
//     services' HTTP faults instead, whose draws are per request and seeded.
//   - A toxic reaches connections already open, not only new ones.
//   - Removing a timeout toxic closes the connections it held.
//   - Disabling a proxy drops every live connection and refuses new ones.
package scenarios
