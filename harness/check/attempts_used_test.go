package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
)

func TestAttemptsUsed(t *testing.T) {
	const ms = time.Millisecond
	// handedBack records n calls the client handed back on status after
	// `attempts` attempts 20ms apart, each answered status, plus 100 ok calls.
	handedBack := func(ct harness.Contract, n, attempts, status int) *hb {
		b := newHB()
		b.h.Profile.Default = ct
		b.okCalls("inventory", 0, time.Second, 10*ms, 2*ms, true, 1)
		for i := range n {
			statuses := make([]int, attempts)
			waits := make([]time.Duration, attempts-1)
			for k := range statuses {
				statuses[k] = status
			}
			for k := range waits {
				waits[k] = 20 * ms
			}
			spaced(b, "inventory", time.Second+time.Duration(i)*30*ms, statuses, waits, ms/2)
		}
		return b
	}
	ct := backoffContract(1)
	budgeted := ct
	budgeted.RetryBudget = 0.2
	slowRetryAfter := ct
	slowRetryAfter.MaxRetryAfter = 500 * ms
	runCheckCases(t, []checkCase{
		{"attempts exhausted", AttemptsUsed{}, func() *harness.History { return handedBack(ct, 10, 3, 503).done() }, harness.StatusPass, []string{"inventory: 0 of 10 calls handed back on a 5xx had attempts (max 3)"}},
		{"one attempt short", AttemptsUsed{}, func() *harness.History { return handedBack(ct, 10, 2, 503).done() }, harness.StatusFail, []string{"10 of 10 calls", "after 2 attempt(s)", "no retry budget declared"}},
		{"a declared budget denying most retries in a burst", AttemptsUsed{}, func() *harness.History {
			b := handedBack(budgeted, 25, 1, 503)
			for i := range 5 { // 5+2 of 32 first 503s retried, and 3 of 5 second ones
				statuses, waits := []int{503, 200}, []time.Duration{10 * ms}
				if i < 3 {
					statuses, waits = []int{503, 503, 200}, []time.Duration{10 * ms, 20 * ms}
				}
				spaced(b, "inventory", 2*time.Second+time.Duration(i)*30*ms, statuses, waits, ms)
			}
			for i := range 2 {
				spaced(b, "inventory", 3*time.Second+time.Duration(i)*30*ms, []int{503, 503}, []time.Duration{10 * ms}, ms)
			}
			return b.done()
		}, harness.StatusPass, []string{"within its declared retry budget (0.20 of calls): at every attempt with 20 or more retriable answers it retried at least 10% of them"}},
		{"a declared budget never granting a retry", AttemptsUsed{}, func() *harness.History { return handedBack(budgeted, 20, 1, 503).done() }, harness.StatusFail,
			[]string{"after attempt 1 it retried only 0 of 20 retriable answers, fewer than a retry budget of 0.20 explains"}},
		{"a declared budget never granting a third attempt", AttemptsUsed{}, func() *harness.History {
			b := handedBack(budgeted, 20, 2, 503)
			for i := range 10 {
				spaced(b, "inventory", 2*time.Second+time.Duration(i)*30*ms, []int{503, 200}, []time.Duration{10 * ms}, ms)
			}
			return b.done()
		}, harness.StatusFail, []string{"after attempt 2 it retried only 0 of 20 retriable answers"}},
		{"the deadline too near for another attempt", AttemptsUsed{}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = ct
			for i := range 10 { // the answer came 1.9s into a 2s call
				seq := b.call("inventory", time.Second+time.Duration(i)*30*ms, 1900*ms, 503, harness.ClassNone)
				b.attempt("inventory", seq, time.Second+time.Duration(i)*30*ms+1898*ms, ms, 503, 1)
			}
			return b.done()
		}, harness.StatusPass, []string{"0 of 10 calls"}},
		{"a 429 with a short Retry-After handed back", AttemptsUsed{Status: 429, RetryAfter: time.Second}, func() *harness.History {
			return handedBack(ct, 10, 1, 429).done()
		}, harness.StatusFail, []string{"10 of 10 calls handed back on a 429", "after 1 attempt(s)"}},
		{"unkeyed charges and notifications handed back on a 429: they may not be sent again", AttemptsUsed{Status: 429, RetryAfter: time.Second}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = ct
			for i := range 10 {
				spaced(b, "payment", time.Second+time.Duration(i)*30*ms, []int{429}, nil, ms/2)
				spaced(b, "notification", time.Second+time.Duration(i)*30*ms, []int{429}, nil, ms/2)
			}
			return b.done()
		}, harness.StatusNotApplicable, []string{"payment: 0 calls handed back on a 429"}},
		{"keyed charges handed back on a 429 are judged", AttemptsUsed{Status: 429, RetryAfter: time.Second}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = ct
			b.h.Workload.KeyedCharges = true
			for i := range 10 {
				spaced(b, "payment", time.Second+time.Duration(i)*30*ms, []int{429}, nil, ms/2)
			}
			return b.done()
		}, harness.StatusFail, []string{"payment: 10 of 10 calls handed back on a 429"}},
		{"a Retry-After longer than the client honours", AttemptsUsed{Status: 429, RetryAfter: time.Second}, func() *harness.History {
			return handedBack(slowRetryAfter, 10, 1, 429).done()
		}, harness.StatusNotApplicable, []string{"inventory honours no Retry-After of 1s"}},
		{"a breaker refusing the next attempt is left out", AttemptsUsed{}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = ct
			for i := range 10 {
				seq := b.call("inventory", time.Second+time.Duration(i)*30*ms, 30*ms, 0, harness.ClassCircuitOpen)
				b.attempt("inventory", seq, time.Second+time.Duration(i)*30*ms, ms, 503, 1)
			}
			return b.done()
		}, harness.StatusNotApplicable, []string{"0 calls handed back on a 5xx, 5 needed"}},
		{"no retries declared", AttemptsUsed{}, func() *harness.History {
			c := ct
			c.MaxAttempts = 1
			return handedBack(c, 10, 1, 503).done()
		}, harness.StatusNotApplicable, []string{"declare max_attempts >= 2"}},
	})
}
