package check

import (
	"github.com/poolproof/poolproof/harness"
	"testing"
	"time"
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
