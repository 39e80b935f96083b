// Package explore owns exploration and shrinking: a generator that turns a
// seed into a random case (a plain harness.Scenario: a workload and a fault
// schedule drawn from the whole fault vocabulary, with every check that
// applies), the explore loop that runs generated cases against a client
// until a time budget ends, and the shrinker that reduces a failing case,
// while the same check still fails on confirming reruns, to a small
// scenario a team can add to its own suite.
//
// Everything is data: a case is a scenario plus its seed, written as a
// scenario file (WriteFile), so "poolproof certify -profile none
// -scenarios FILE" replays it. The generator draws from a seeded PCG only,
// so the same seed gives the same case. Runs go through a Runner; the one
// the command line uses (CertifyRunner) calls harness.Certify on one
// environment, and tests pass a fake one.
//
// Shrinking is hand-written rather than built on a property-based testing
// library: the property here is a chaos run whose verdict depends on
// timing, so every reduction is confirmed by reruns, bounded by a time
// budget and an attempt count, and the reductions are the domain's own
// (drop a fault, shorten its window, soften it, fewer workers, a shorter
// workload), each of which keeps the scenario valid and readable.
package explore
