// Package harness owns the run and its record: the plug-in API a team
// implements (Client, ClientFactory, Service, and for a client in a child
// process ReportedBody, LeakReporter and ErrClientGone), the adapters for
// clients without Do (RoundTripperClient, CallFunc) and the contract it
// declares (Profile, Contract, read from a contract file by LoadProfile);
// a Scenario as data (a Workload, a nemesis schedule
// of Steps and Actions built with the toxic constructors, and the Checks
// that judge it); the runner that drives the client while the nemesis
// applies the schedule through an Environment's Faults; the samplers, the
// teardown and the leak measurement; the recorder and the History it
// writes (with its fault windows, a view of that history); Verdicts and
// the Check interface; and Certify, which the suites and the command line
// both call.
//
// It knows no particular client, environment or judge: clients come in
// through a ClientFactory, environments (embedded, docker, remote) live in
// harness/env behind the Environment interface, and the checks live in
// harness/check behind the Check interface. Data flows one way: scenario ->
// runner (workload + nemesis) -> history -> checks -> verdicts -> report.
// Environments only provide endpoints, fault handles and observations; they
// never judge, and a check reads nothing but the history.
package harness
