package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

func TestCallerDeadline(t *testing.T) {
	const (
		inv = fakeservers.Inventory
		ms  = time.Millisecond
	)
	limits := harness.CallerLimits{DeadlineShare: 0.3, Deadline: 150 * ms, CancelShare: 0.2, CancelAfter: 100 * ms}
	// run: 200 inventory calls 10ms apart; a call its caller gave up on
	// takes late(limit) and fails with a timeout, the others take 2ms and
	// succeed.
	run := func(caller harness.CallerLimits, late func(harness.CallerLimit) time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB(inv)
			b.h.Workload.Caller = caller
			for i := range 200 {
				at := time.Duration(i) * 10 * ms
				lim := b.h.CallerLimit(b.seq)
				if lim.Kind == harness.CallerWaits {
					b.call(inv, at, 2*ms, 200, harness.ClassNone)
					continue
				}
				b.call(inv, at, late(lim), 0, harness.ClassTimeout)
			}
			return b.done()
		}
	}
	onTime := func(l harness.CallerLimit) time.Duration { return l.After + 5*ms }
	// sleepsThrough returns after a 1s Retry-After whatever the caller
	// wanted, for one call in four; the others in time.
	n := 0
	sleepsThrough := func(l harness.CallerLimit) time.Duration {
		n++
		if n%4 == 0 {
			return time.Second
		}
		return onTime(l)
	}
	runCheckCases(t, []checkCase{
		{"the client returns when the caller gives up", CallerDeadline{}, run(limits, onTime), harness.StatusPass,
			[]string{"returned within their limit + margin", "deadlines", "cancellations"}},
		{"the client sleeps through the caller's deadline", CallerDeadline{}, run(limits, sleepsThrough), harness.StatusFail,
			[]string{"returned later than their limit + margin", "took 1s", "watch the call's context"}},
		{"the workload gives up on no call", CallerDeadline{}, run(harness.CallerLimits{}, onTime), harness.StatusNotApplicable,
			[]string{"set Workload.Caller"}},
		// The calls the caller gave up on failed, and are no client's failure.
		{"goodput leaves out the calls the caller gave up on", Goodput{}, run(limits, onTime), harness.StatusPass,
			[]string{"100.0% of"}},
	})

	// About the declared shares of calls are given up on.
	h := run(limits, onTime)()
	kinds := map[harness.CallerLimitKind]int{}
	for _, c := range h.Calls {
		kinds[h.CallerLimit(c.Seq).Kind]++
	}
	require.InDelta(t, 60, kinds[harness.CallerDeadline], 25)
	require.InDelta(t, 40, kinds[harness.CallerCancel], 20)
}
