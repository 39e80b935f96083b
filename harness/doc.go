// Package harness is the engine every suite and the CLI drive: the plug-in
// API a team implements, the environments that provide endpoints and fault
// handles (embedded, docker, remote), the fault driver, the nemesis schedule,
// the workload runner, the recorder and its history, the samplers, and the
// checks framework that turns a history into verdicts.
//
// It knows no particular client: clients come in through a ClientFactory.
// Environments only provide endpoints, fault handles and observations; they
// never judge.
package harness
