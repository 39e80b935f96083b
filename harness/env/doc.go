// Package env owns where the fake services run and how faults reach them:
// the embedded environment (fake services and Toxiproxy in this process),
// the docker environment (the same as containers built from docker/ with
// testcontainers-go, and the reaper of runs whose process died), the remote
// environment (an existing Toxiproxy and services), the in-process
// Toxiproxy server, the fault driver that applies a scenario's actions
// through Toxiproxy's own client API and the fake services' admin API, and
// the admin helpers the three share. The embedded environment can run a
// service as replicas (WithReplicas), each faulted and observed alone, for
// something in front of them to balance across (see package proxy).
//
// Open(ctx, name, opts...) starts any of them with one set of options
// (WithSeed, WithKeepAlive, WithCallTimeout, ...); an option an environment
// cannot honour is refused by name. Every environment implements
// harness.Environment, so a scenario runs unchanged on each. Environments
// provide endpoints, fault handles and observations; they never judge.
package env
