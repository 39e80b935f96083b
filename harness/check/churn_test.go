package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

func TestChurnUnderFaultsThatAnswerWhole(t *testing.T) {
	const (
		inv = fakeservers.Inventory
		ms  = time.Millisecond
		sec = time.Second
	)
	// flaky: a pool of 4 serving a call every 5ms for 10s while inventory
	// answers 503 to a share of reads from 2s on (fault), each fifth call
	// retried once; with perRetry, each retry on a new connection.
	flaky := func(fault fakeservers.Fault, perRetry bool) func() *harness.History {
		return func() *harness.History {
			b := newHB()
			for range 4 {
				b.conn(inv, 0, -1)
			}
			b.okCalls(inv, 0, 2*sec, 5*ms, 2*ms, true, 1)
			b.step(2*sec, harness.SetHTTPFaults(inv, fault))
			for i := range 1600 {
				start := 2*sec + time.Duration(i)*5*ms
				if i%5 != 0 {
					seq := b.call(inv, start, 2*ms, 200, harness.ClassNone)
					b.attempt(inv, seq, start, ms, 200, 1)
					continue
				}
				if perRetry {
					b.conn(inv, start+2*ms, start+4*ms)
				}
				spaced(b, inv, start, []int{503, 200}, []time.Duration{ms}, ms)
			}
			return b.done()
		}
	}
	status := fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 503, Probability: 0.2}
	reset := fakeservers.Fault{Kind: fakeservers.FaultProcessThenFail, Then: fakeservers.ThenReset, Probability: 0.2}
	runCheckCases(t, []checkCase{
		{"a new connection per retried 5xx is churn", PoolChurn{}, flaky(status, true), harness.StatusFail, []string{"new connections beyond the pool's max", "outside faults that cost connections"}},
		{"retries on the pool's connections are not", PoolChurn{}, flaky(status, false), harness.StatusPass, []string{"0 new connections"}},
		{"connections lost to resets are replaced, not churned", PoolChurn{}, flaky(reset, true), harness.StatusNotApplicable, []string{"too few steady-state calls"}},
		{"calls the breaker refused use no connection", PoolChurn{}, func() *harness.History {
			h := flaky(status, true)()
			for i := range 50000 {
				h.Calls = append(h.Calls, harness.CallRecord{Seq: uint32(100000 + i), Start: int64(3 * sec), End: int64(3*sec + ms), Service: harness.ServiceInventory,
					Op: harness.OpGetItem, Class: harness.ClassCircuitOpen})
			}
			return h
		}, harness.StatusFail, []string{"new connections beyond the pool's max"}},
	})
}
