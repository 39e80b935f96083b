// Package reference binds poolproof's reference client (package
// pooledclient, with its default per-service configurations) to the harness:
// the client factory and the Profile that declares exactly what those
// configurations promise. The CLI, the Ginkgo suites and the tests share it,
// so "the reference client passes" always means the same client and the same
// contract.
package reference
