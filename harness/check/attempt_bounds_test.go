package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/poolproof/poolproof/harness"
)

// TestPerCallBoundsDeriveFromPerAttemptOnes holds the checks that bound a
// whole call to the contract's per-call value when declared, else to
// MaxAttempts x the per-attempt value (the existing margins on top), else
// not at all: a retrying client whose pool wait or timeout restarts
// with every attempt is not failed at the bound of one attempt.
func TestPerCallBoundsDeriveFromPerAttemptOnes(t *testing.T) {
	const (
		inv = "inventory"
		ms  = time.Millisecond
		sec = time.Second
	)
	// exhausted is 200 calls under a 200ms injected latency, each taking
	// took: p99 = took.
	exhausted := func(ct harness.Contract, took time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB()
			b.h.Profile = harness.Profile{Default: ct}
			for i := range 200 {
				b.call(inv, time.Duration(i)*10*ms, took, 0, harness.ClassPoolExhausted)
			}
			return b.done()
		}
	}
	// slowCall is one call taking took among quick ones.
	slowCall := func(ct harness.Contract, took time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB()
			b.h.Profile = harness.Profile{Default: ct}
			b.okCalls(inv, 0, sec, 100*ms, 5*ms, false, 0)
			b.call(inv, sec, took, 0, harness.ClassTimeout)
			return b.done()
		}
	}
	exhaustion := PoolExhaustion{Service: inv, Latency: 200 * ms}
	cases := []struct {
		checkCase
		bound time.Duration
	}{
		// pool.exhaustion_fail_fast: bound = 200ms + wait + max(250ms, (200ms + wait)/2).
		{checkCase{"exhaustion: 3 attempts of a 250ms wait are held to 750ms + margin", exhaustion,
			exhausted(harness.Contract{AttemptPoolWait: 250 * ms, MaxAttempts: 3}, sec),
			harness.StatusPass, []string{"within latency 200ms + pool wait 750ms (3 attempts x 250ms) + margin"}}, 1425 * ms},
		{checkCase{"exhaustion: a per-attempt client that queues still fails", exhaustion,
			exhausted(harness.Contract{AttemptPoolWait: 250 * ms, MaxAttempts: 3}, 3200*ms),
			harness.StatusFail, []string{"p99 latency 3.2s", "pool wait 750ms (3 attempts x 250ms) + margin", "calls queue"}}, 1425 * ms},
		{checkCase{"exhaustion: only PoolWait declared keeps the per-call bound", exhaustion,
			exhausted(harness.Contract{PoolWait: 250 * ms, MaxAttempts: 3}, sec),
			harness.StatusFail, []string{"latency 200ms + pool wait 250ms + margin"}}, 700 * ms},
		{checkCase{"exhaustion: a declared PoolWait wins over the per-attempt wait", exhaustion,
			exhausted(harness.Contract{PoolWait: 300 * ms, AttemptPoolWait: 250 * ms, MaxAttempts: 3}, sec),
			harness.StatusFail, []string{"pool wait 300ms + margin"}}, 750 * ms},
		{checkCase{"exhaustion: undeclared attempts count as one", exhaustion,
			exhausted(harness.Contract{AttemptPoolWait: 250 * ms}, sec),
			harness.StatusFail, []string{"pool wait 250ms (1 attempt x 250ms)"}}, 700 * ms},
		{checkCase{"exhaustion: one attempt is one wait", exhaustion,
			exhausted(harness.Contract{AttemptPoolWait: 250 * ms, MaxAttempts: 1}, sec),
			harness.StatusFail, []string{"pool wait 250ms (1 attempt x 250ms) + margin"}}, 700 * ms},
		{checkCase{"exhaustion: nothing declared is not judged", exhaustion,
			exhausted(harness.Contract{}, sec),
			harness.StatusNotApplicable, []string{"declares no pool wait", "declare pool_wait"}}, 0},
		{checkCase{"exhaustion: the check's own PoolWait overrides the contract", PoolExhaustion{Service: inv, Latency: 200 * ms, PoolWait: 250 * ms},
			exhausted(harness.Contract{AttemptPoolWait: 250 * ms, MaxAttempts: 3}, sec),
			harness.StatusFail, []string{"pool wait 250ms + margin"}}, 700 * ms},

		// timeout.request_bound: bound = timeout x 1.25 + 500ms.
		{checkCase{"request bound: 3 attempts of 1s are held to 3s + margin", RequestBound{},
			slowCall(harness.Contract{AttemptTimeout: sec, MaxAttempts: 3}, 3500*ms),
			harness.StatusPass, []string{"took 3.5s, within 3s (3 attempts x 1s) + margin"}}, 4250 * ms},
		{checkCase{"request bound: a per-attempt client that hangs still fails", RequestBound{},
			slowCall(harness.Contract{AttemptTimeout: sec, MaxAttempts: 3}, 10*sec),
			harness.StatusFail, []string{"1 of 11 calls outlived the request timeout + margin (3s (3 attempts x 1s) + margin = 4.25s)"}}, 4250 * ms},
		{checkCase{"request bound: only RequestTimeout declared keeps the per-call bound", RequestBound{},
			slowCall(harness.Contract{RequestTimeout: sec, MaxAttempts: 3}, 3500*ms),
			harness.StatusFail, []string{"(1s + margin = 1.75s)"}}, 1750 * ms},
		{checkCase{"request bound: a declared RequestTimeout wins over the per-attempt one", RequestBound{},
			slowCall(harness.Contract{RequestTimeout: 2 * sec, AttemptTimeout: sec, MaxAttempts: 3}, 3500*ms),
			harness.StatusFail, []string{"(2s + margin = 3s)"}}, 3 * sec},
		{checkCase{"request bound: undeclared attempts count as one", RequestBound{},
			slowCall(harness.Contract{AttemptTimeout: sec}, 3500*ms),
			harness.StatusFail, []string{"(1s (1 attempt x 1s) + margin = 1.75s)"}}, 1750 * ms},
		{checkCase{"request bound: nothing declared is not judged", RequestBound{},
			slowCall(harness.Contract{}, 3500*ms),
			harness.StatusNotApplicable, []string{"declares no request timeout", "declare request_timeout"}}, 0},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			v := judgeCase(t, tt.checkCase)
			assert.InDelta(t, float64(tt.bound)/float64(time.Millisecond), v.Bound, 0.001, "%s", v)
		})
	}
}
