// Package driver certifies a client that runs in another process, in any
// language: a driver is a program speaking the driver protocol
// (docs/driver-protocol.md, newline-delimited JSON on its stdin and
// stdout) that poolproof starts as a child in its own process group.
// Start runs one and returns a *Process, which is a harness.Client (with
// idle close, Close and its own leak measurement, see harness.LeakReporter),
// so every scenario and check runs on it unchanged: calls are multiplexed
// by id, response bodies are read by the driver and reported as length and
// SHA-256, error classes map to harness classes, and a driver that crashes,
// hangs, prints garbage or answers a call it was never sent ends with a
// *ProtocolError that every pending call returns, its process group killed
// and reaped. Factory starts one process per run for every service of it.
package driver
