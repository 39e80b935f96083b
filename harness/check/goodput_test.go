package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

func TestGoodput(t *testing.T) {
	const (
		inv = fakeservers.Inventory
		ms  = time.Millisecond
	)
	// run: 300 inventory calls 10ms apart, the client declaring attempts
	// and a retry budget; a 503 fault from 1s on when flaky; fail(i,
	// inFault) is how call i ends (ClassOther stands for a 503 the retries
	// handed back).
	run := func(attempts int, budget float64, flaky bool, fail func(i int, inFault bool) harness.ErrorClass) func() *harness.History {
		return func() *harness.History {
			b := newHB(inv)
			b.h.Profile = harness.Profile{Default: harness.Contract{MaxAttempts: attempts, RetryBudget: budget}}
			if flaky {
				b.step(time.Second, harness.SetHTTPFaults(inv, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 503, Probability: 0.2}))
			}
			for i := range 300 {
				at := time.Duration(i) * 10 * ms
				switch class := fail(i, flaky && at >= time.Second); class {
				case harness.ClassNone:
					b.call(inv, at, 2*ms, 200, harness.ClassNone)
				case harness.ClassOther:
					b.call(inv, at, 2*ms, 503, harness.ClassNone)
				default:
					b.call(inv, at, 2*ms, 0, class)
				}
			}
			return b.done()
		}
	}
	every := func(n int, class harness.ErrorClass) func(int, bool) harness.ErrorClass {
		return func(i int, _ bool) harness.ErrorClass {
			if i%n == 0 {
				return class
			}
			return harness.ClassNone
		}
	}
	// underFault fails one call in n inside the fault, none outside.
	underFault := func(n int) func(int, bool) harness.ErrorClass {
		return func(i int, in bool) harness.ErrorClass {
			if in && i%n == 0 {
				return harness.ClassOther
			}
			return harness.ClassNone
		}
	}
	runCheckCases(t, []checkCase{
		{"no fault, every call succeeds", Goodput{}, run(3, 0, false, every(1000, harness.ClassTimeout)), harness.StatusPass,
			[]string{"[inventory] with no fault: 99.7% of 300 calls succeeded, bound 96.0%"}},
		{"no fault, one call in six cut by the client's own deadline", Goodput{}, run(3, 0, false, every(6, harness.ClassTimeout)), harness.StatusFail,
			[]string{"83.3% of 300 calls succeeded", "no fault fails a call", "50 timeout"}},
		{"no fault, a breaker turns half the calls away", Goodput{}, run(3, 0, false, every(2, harness.ClassCircuitOpen)), harness.StatusFail,
			[]string{"150 circuit_open"}},
		{"fault-free calls before a caller cancellation are left out", Goodput{}, run(3, 0, false, every(2, harness.ClassCanceled)), harness.StatusPass,
			[]string{"of 150 calls succeeded"}},
		{"flaky: 3 attempts make 99.2% possible, the client gets there", Goodput{FaultFailure: 0.2}, run(3, 0, true, underFault(200)), harness.StatusPass,
			[]string{"under the fault: 99.5% of 200 calls succeeded, bound 93.3%"}},
		{"flaky: 3 attempts declared, the client fails what one attempt fails", Goodput{FaultFailure: 0.2}, run(3, 0, true, underFault(5)), harness.StatusFail,
			[]string{"under the fault: 80.0% of 200 calls succeeded, bound 93.3%", "3 declared attempts leave 1 - 0.20^3 = 99.2%", "40 status 503"}},
		{"flaky: a declared retry budget of 0.2 retries per call leaves 96%, the client gets 95%", Goodput{FaultFailure: 0.2}, run(3, 0.2, true, underFault(20)), harness.StatusPass,
			[]string{"under the fault: 95.0% of 200 calls succeeded, bound 87.8%"}},
		{"flaky: a retry budget does not excuse no retries at all", Goodput{FaultFailure: 0.2}, run(3, 0.2, true, underFault(5)), harness.StatusFail,
			[]string{"bound 87.8%", "the declared retry budget (0.20 retries per call) (1 - 0.20) x (1 + 0.20) = 96.0%"}},
		{"flaky: one attempt declared, 80% is what it makes possible", Goodput{FaultFailure: 0.2}, run(1, 0, true, underFault(5)), harness.StatusPass,
			[]string{"bound 67.5%"}},
		{"flaky: the fault-free part is held to the fault-free share", Goodput{FaultFailure: 0.2}, run(1, 0, true, func(i int, in bool) harness.ErrorClass {
			if !in && i%4 == 0 {
				return harness.ClassTimeout
			}
			return harness.ClassNone
		}), harness.StatusFail, []string{"[inventory] with no fault: 75.0% of 100 calls succeeded"}},
		{"too few calls", Goodput{MinCalls: 400}, run(3, 0, false, every(2, harness.ClassTimeout)), harness.StatusNotApplicable,
			[]string{"fewer than 400 calls"}},
	})
}
