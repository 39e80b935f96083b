// Package reference binds poolproof's reference client (package
// pooledclient, with its default per-service configurations) to the harness:
// the client factory (Factory, and PoolFactory for the same client at a
// chosen pool size, which the pool-sizing sweep drives) and the Profile that
// declares exactly what those configurations promise. The CLI, the Ginkgo
// suites, the sweep and the tests share it, so "the reference client" always
// means the same client built one way, and "it passes" the same contract.
package reference
