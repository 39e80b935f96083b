package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/poolproof/poolproof/harness"
)

func TestIsolationAndRecoveryChecks(t *testing.T) {
	const (
		inv = "inventory"
		pay = "payment"
		ms  = time.Millisecond
		sec = time.Second
	)
	// run: payment down from 3s to 5s (proxy disabled), inventory steady at
	// 5ms; during(t) shapes inventory's calls during the outage and after(t)
	// payment's calls after it.
	run := func(invDuring func(b *hb, t time.Duration), payAfter func(b *hb, t time.Duration)) *harness.History {
		b := newHB(inv, pay)
		b.h.Workload.Duration = 12 * sec
		b.step(3*sec, harness.DisableProxy(pay))
		b.step(5*sec, harness.EnableProxy(pay))
		for t := time.Duration(0); t < 12*sec; t += 10 * ms {
			switch {
			case t >= 3*sec && t < 5*sec:
				if invDuring != nil {
					invDuring(b, t)
				} else {
					b.call(inv, t, 5*ms, 200, harness.ClassNone)
				}
				b.call(pay, t, 100*time.Microsecond, 0, harness.ClassCircuitOpen)
			case t >= 5*sec && payAfter != nil:
				b.call(inv, t, 5*ms, 200, harness.ClassNone)
				payAfter(b, t)
			default:
				b.call(inv, t, 5*ms, 200, harness.ClassNone)
				b.call(pay, t, 8*ms, 201, harness.ClassNone)
			}
		}
		return b.done()
	}
	cases := []checkCase{
		{"isolation: inventory unaffected", Isolation{Down: pay}, func() *harness.History { return run(nil, nil) }, harness.StatusPass,
			[]string{"[inventory] kept >= 0.99 success"}},
		{"isolation: inventory fails with payment", Isolation{Down: pay}, func() *harness.History {
			return run(func(b *hb, t time.Duration) {
				if t%(20*ms) == 0 {
					b.call(inv, t, 5*ms, 200, harness.ClassNone)
				} else {
					b.call(inv, t, 250*ms, 0, harness.ClassPoolExhausted)
				}
			}, nil)
		}, harness.StatusFail, []string{"inventory succeeded on only 100 of 200 calls while payment was down", "its own pool"}},
		{"isolation: inventory slowed by payment", Isolation{Down: pay}, func() *harness.History {
			return run(func(b *hb, t time.Duration) { b.call(inv, t, 400*ms, 200, harness.ClassNone) }, nil)
		}, harness.StatusFail, []string{"inventory p99 latency rose from 5ms to 400ms while payment was down"}},
		{"isolation: no down service", Isolation{}, func() *harness.History { return run(nil, nil) }, harness.StatusNotApplicable, []string{"named no service"}},
		{"isolation: nothing taken down", Isolation{Down: inv}, func() *harness.History { return run(nil, nil) }, harness.StatusNotApplicable, []string{"no fault window on inventory"}},

		{"throughput: back to baseline", RecoveryThroughput{Service: pay}, func() *harness.History { return run(nil, nil) }, harness.StatusPass,
			[]string{"successful calls/s after the fault cleared, 100.0 before"}},
		{"throughput: stuck at a third", RecoveryThroughput{Service: pay}, func() *harness.History {
			return run(nil, func(b *hb, t time.Duration) {
				if t%(30*ms) == 0 {
					b.call(pay, t, 8*ms, 201, harness.ClassNone)
				} else {
					b.call(pay, t, 100*time.Microsecond, 0, harness.ClassCircuitOpen)
				}
			})
		}, harness.StatusFail, []string{"payment: 33.", "successful calls/s after the fault cleared against 100.0 before", "did not recover"}},
		{"throughput: every faulted service", RecoveryThroughput{}, func() *harness.History { return run(nil, nil) }, harness.StatusPass, []string{"payment"}},
		{"throughput: no baseline", RecoveryThroughput{Service: pay}, func() *harness.History {
			h := run(nil, nil)
			for i := range h.Steps {
				h.Steps[i].Started -= 2900 * ms // the fault starts at 100ms
			}
			return h
		}, harness.StatusNotApplicable, []string{"no baseline"}},
		{"throughput: the run ends too soon", RecoveryThroughput{Service: pay}, func() *harness.History {
			h := run(nil, nil)
			h.Steps[1].Started = 11 * sec
			return h
		}, harness.StatusNotApplicable, []string{"ended too soon after the fault cleared at 11s"}},

		{"latency: back to baseline", RecoveryLatency{Service: pay}, func() *harness.History { return run(nil, nil) }, harness.StatusPass,
			[]string{"payment: p50 latency 8ms after the fault cleared, 8ms before"}},
		{"latency: still slow", RecoveryLatency{Service: pay}, func() *harness.History {
			return run(nil, func(b *hb, t time.Duration) { b.call(pay, t, 300*ms, 201, harness.ClassNone) })
		}, harness.StatusFail, []string{"payment: p50 latency 300ms after the fault cleared against 8ms before"}},
		{"latency: fault to the end", RecoveryLatency{Service: pay}, func() *harness.History {
			h := run(nil, nil)
			h.Steps = h.Steps[:1]
			return h
		}, harness.StatusNotApplicable, []string{"lasted to the end of the run"}},
	}
	runCheckCases(t, cases)
}

// A tail at half the baseline's throughput fails, unless other processes
// took the CPU the run needed: the ratio is divided by what was left of it.
func TestRecoveryThroughputTellsABusyMachineFromASlowClient(t *testing.T) {
	const (
		pay = "payment"
		ms  = time.Millisecond
		sec = time.Second
	)
	// The run uses selfCPUs of the machine's 2 CPUs; other processes use
	// othersAfter of the machine after 5s (none before). Samples every
	// 100ms.
	run := func(selfCPUs, othersAfter float64) *harness.History {
		b := newHB(pay)
		b.h.Workload.Duration = 12 * sec
		b.h.CPUs = 2
		b.step(3*sec, harness.DisableProxy(pay))
		b.step(5*sec, harness.EnableProxy(pay))
		for t := time.Duration(0); t < 12*sec; t += 10 * ms {
			switch {
			case t >= 3*sec && t < 5*sec:
				b.call(pay, t, 100*time.Microsecond, 0, harness.ClassCircuitOpen)
			case t >= 5*sec && t%(20*ms) != 0:
				// half the calls of the baseline succeed after the fault
			default:
				b.call(pay, t, 8*ms, 201, harness.ClassNone)
			}
		}
		var busy, self int64 = 1_000_000, 500_000
		for t := time.Duration(0); t <= 12*sec; t += 100 * ms {
			b.h.Samples = append(b.h.Samples, harness.Sample{At: int64(t), CPUBusyMs: busy, CPUSelfMs: self})
			self += int64(selfCPUs * 100)
			busy += int64(selfCPUs * 100)
			if t >= 5*sec {
				busy += int64(othersAfter * 200)
			}
		}
		return b.done()
	}
	slow := RecoveryThroughput{Service: pay}.Judge(run(2, 0))
	assert.Equal(t, harness.StatusFail, slow.Status, slow.Reason)
	assert.NotContains(t, slow.Reason, "other processes", "no adjustment on a quiet machine")

	busy := RecoveryThroughput{Service: pay}.Judge(run(2, 0.5))
	assert.Equal(t, harness.StatusPass, busy.Status, busy.Reason)
	assert.Contains(t, busy.Reason, "other processes took 50% of the machine's CPU after, 0% before, when the run used 100%")

	spare := RecoveryThroughput{Service: pay}.Judge(run(1, 0.5))
	assert.Equal(t, harness.StatusFail, spare.Status, "the run used one CPU, the other processes the other: they took nothing it needed: %s", spare.Reason)

	nearlyIdle := RecoveryThroughput{Service: pay}.Judge(run(2, 0.1))
	assert.Equal(t, harness.StatusFail, nearlyIdle.Status, "a little load does not excuse half the throughput: %s", nearlyIdle.Reason)
}
