package check

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// spaced records a call of svc at start whose attempts the server answered
// with statuses, each in 1ms, the caller waiting waits[i] after attempt i;
// the call ends returnAfter after the last answer, with its status.
func spaced(b *hb, svc string, start time.Duration, statuses []int, waits []time.Duration, returnAfter time.Duration) uint32 {
	total := time.Duration(len(statuses)) * time.Millisecond
	for _, w := range waits {
		total += w
	}
	last := statuses[len(statuses)-1]
	seq := b.call(svc, start, total+returnAfter, last, harness.ClassNone)
	at := start
	for i, st := range statuses {
		b.attempt(svc, seq, at, time.Millisecond, st, uint64(1+i%4))
		at += time.Millisecond
		if i < len(waits) {
			at += waits[i]
		}
	}
	return seq
}

// backoffContract declares 3 attempts and a 20ms backoff doubling up to 200ms,
// with jitter j.
func backoffContract(j float64) harness.Contract {
	ct := fullContract
	ct.BackoffBase, ct.BackoffCap, ct.BackoffJitter = 20*time.Millisecond, 200*time.Millisecond, j
	return ct
}

// retriedCalls records n calls retried twice on 503s and answered 200 on the
// third attempt, waiting wait(n) (n = 1, 2) before each retry.
func retriedCalls(b *hb, n int, wait func(n int) time.Duration) {
	for i := range n {
		spaced(b, "inventory", time.Second+time.Duration(i)*20*time.Millisecond,
			[]int{503, 503, 200}, []time.Duration{wait(1), wait(2)}, time.Millisecond)
	}
}

func TestBackoffGrowsAndJitter(t *testing.T) {
	const ms = time.Millisecond
	rng := rand.New(rand.NewPCG(1, 2))
	// full jitter: uniform in [0, 20ms x 2^(n-1)], plus 0.5ms of loopback.
	full := func(n int) time.Duration {
		return ms/2 + time.Duration(rng.Int64N(int64(backoffCeiling(backoffContract(1), n))))
	}
	constant := func(int) time.Duration { return 50 * ms }
	doubling := func(n int) time.Duration { return 50 * ms << (n - 1) }
	// noisy adds up to 3ms of scheduling noise to a wait.
	noisy := func(w func(int) time.Duration) func(int) time.Duration {
		return func(n int) time.Duration { return w(n) + time.Duration(rng.Int64N(int64(3*ms))) }
	}
	// together records groups of 4 calls whose first attempts fail at the
	// same moment, each waiting wait(n) plus up to 200µs of its own noise
	// and, per group, up to load of a machine starving them all alike.
	together := func(ct harness.Contract, groups int, load time.Duration, wait func(int) time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB()
			b.h.Profile.Default = ct
			for g := range groups {
				starved := time.Duration(0)
				if load > 0 {
					starved = time.Duration(rng.Int64N(int64(load)))
				}
				for range 4 {
					own := time.Duration(rng.Int64N(int64(200 * time.Microsecond)))
					spaced(b, "inventory", time.Second+time.Duration(g)*300*ms, []int{503, 200}, []time.Duration{wait(1) + starved + own}, ms)
				}
			}
			return b.done()
		}
	}
	history := func(j float64, calls int, wait func(int) time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB()
			b.h.Profile.Default = backoffContract(j)
			b.okCalls("inventory", 0, time.Second, 10*ms, 2*ms, true, 1)
			retriedCalls(b, calls, wait)
			return b.done()
		}
	}
	runCheckCases(t, []checkCase{
		{"grows: full jitter doubling", BackoffGrows{}, history(1, 60, full), harness.StatusPass, []string{"inventory: over 60 calls retried twice", "(declared x2.00)"}},
		{"grows: doubling without jitter, noisy", BackoffGrows{}, history(0, 30, noisy(doubling)), harness.StatusPass, nil},
		{"grows: a loaded machine adding 30ms to every wait pulls the ratio down, not the difference", BackoffGrows{}, history(1, 200, func(n int) time.Duration {
			return 30*ms + full(n)
		}), harness.StatusPass, []string{"a third of the declared growth of the median: 3.3ms"}},
		{"grows: constant backoff", BackoffGrows{}, history(0, 30, noisy(constant)), harness.StatusFail, []string{"does not grow between retries"}},
		{"grows: constant backoff with full jitter", BackoffGrows{}, history(1, 200, func(int) time.Duration {
			return ms/2 + time.Duration(rng.Int64N(int64(20*ms)))
		}), harness.StatusFail, []string{"does not grow"}},
		{"grows: too few calls retried twice", BackoffGrows{}, history(0, 3, doubling), harness.StatusNotApplicable, []string{"3 calls retried twice on their own backoff, 8 needed"}},
		{"grows: a cap below the growth leaves nothing to judge", BackoffGrows{}, func() *harness.History {
			h := history(0, 30, constant)()
			ct := backoffContract(0)
			ct.BackoffCap = 22 * ms
			h.Profile.Default = ct
			return h
		}, harness.StatusNotApplicable, []string{"barely grows"}},
		{"grows: undeclared", BackoffGrows{}, func() *harness.History {
			h := history(0, 30, constant)()
			h.Profile.Default = fullContract
			return h
		}, harness.StatusNotApplicable, []string{"declare max_attempts >= 3 and backoff_base"}},
		{"grows: waits after a 429 follow its Retry-After, not the backoff", BackoffGrows{}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = backoffContract(0)
			for i := range 30 {
				spaced(b, "inventory", time.Second+time.Duration(i)*20*ms, []int{429, 429, 200}, []time.Duration{time.Second, time.Second}, ms)
			}
			return b.done()
		}, harness.StatusNotApplicable, []string{"0 calls retried twice"}},

		{"jitter: full jitter", Jitter{}, together(backoffContract(1), 15, 0, full), harness.StatusPass, []string{"over 90 pairs of calls whose attempts before the same retry failed within 1ms of each other"}},
		{"jitter: equal jitter on a loaded machine", Jitter{}, together(backoffContract(0.5), 15, 30*ms, func(n int) time.Duration {
			d := int64(backoffCeiling(backoffContract(0.5), n))
			return time.Duration(d/2 + rng.Int64N(d/2))
		}), harness.StatusPass, nil},
		{"jitter: declared, none drawn, each wait up to 1ms late on its own", Jitter{}, together(backoffContract(0.5), 15, 0, func(n int) time.Duration {
			return doubling(n) + time.Duration(rng.Int64N(int64(ms)))
		}), harness.StatusFail, []string{"calls that fail together retry together"}},
		{"jitter: declared, none drawn, on a loaded machine", Jitter{}, together(backoffContract(0.5), 15, 30*ms, doubling), harness.StatusFail, []string{"calls that fail together retry together"}},
		{"jitter: not declared", Jitter{}, together(backoffContract(0), 15, 0, doubling), harness.StatusNotApplicable, []string{"declare max_attempts >= 2, backoff_base and backoff_jitter"}},
		{"jitter: calls that never fail together", Jitter{}, history(1, 60, full), harness.StatusNotApplicable, []string{"fewer than 20 pairs of calls failing within 1ms of each other, and fewer than 15 waits of over 500ms"}},
		{"jitter: long waits in lock-step, never failing together, loaded", Jitter{}, history(0.5, 16, func(n int) time.Duration {
			return time.Second<<(n-1) + time.Duration(rng.Int64N(int64(20*ms)))
		}), harness.StatusFail, []string{"the 16 waits before retry", "spread their middle half over", "calls that fail together retry together"}},
		{"jitter: long waits drawn with equal jitter", Jitter{}, history(0.5, 16, func(n int) time.Duration {
			d := int64(time.Second << (n - 1))
			return time.Duration(d/2 + rng.Int64N(d/2))
		}), harness.StatusPass, []string{"waits before retry"}},
	})
}

func TestGivesUpPromptly(t *testing.T) {
	const ms = time.Millisecond
	// exhausted records n calls whose three attempts were all answered 503,
	// each returned `after` the last answer; ok calls in between.
	exhausted := func(n int, after time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB()
			b.h.Profile.Default = backoffContract(1)
			b.okCalls("inventory", 0, time.Second, 10*ms, 2*ms, true, 1)
			for i := range n {
				spaced(b, "inventory", time.Second+time.Duration(i)*30*ms, []int{503, 503, 503}, []time.Duration{10 * ms, 20 * ms}, after)
			}
			return b.done()
		}
	}
	runCheckCases(t, []checkCase{
		{"hands the last answer back at once", GivesUpPromptly{}, exhausted(20, ms/2), harness.StatusPass, []string{"inventory: the median call ending on a 503 returned 500µs after", "(20 calls"}},
		{"a few stalls of a loaded machine decide nothing", GivesUpPromptly{}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = backoffContract(1)
			for i := range 20 {
				after := ms
				if i%4 == 0 {
					after = 300 * ms
				}
				spaced(b, "inventory", time.Second+time.Duration(i)*30*ms, []int{503, 503, 503}, []time.Duration{10 * ms, 20 * ms}, after)
			}
			return b.done()
		}, harness.StatusPass, []string{"slowest 300ms"}},
		{"sleeps a backoff after the last attempt", GivesUpPromptly{}, exhausted(20, 60*ms), harness.StatusFail, []string{"returned 60ms after the server sent its last answer", "hand the answer back at once"}},
		{"sleeps until its deadline for a Retry-After it will not honour", GivesUpPromptly{}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = backoffContract(1)
			for i := range 10 {
				spaced(b, "inventory", time.Second+time.Duration(i)*30*ms, []int{200}, nil, ms) // healthy calls are not judged
				seq := b.call("inventory", 2*time.Second+time.Duration(i)*30*ms, 2*time.Second, 0, harness.ClassTimeout)
				b.attempt("inventory", seq, 2*time.Second+time.Duration(i)*30*ms, ms, 503, 1)
			}
			return b.done()
		}, harness.StatusFail, []string{"ending on a 503 returned 1.999s after", "(10 calls"}},
		{"a breaker refusing the next attempt is left out", GivesUpPromptly{}, func() *harness.History {
			b := newHB()
			for i := range 10 {
				seq := b.call("inventory", time.Second+time.Duration(i)*30*ms, 60*ms, 0, harness.ClassCircuitOpen)
				b.attempt("inventory", seq, time.Second+time.Duration(i)*30*ms, ms, 503, 1)
			}
			return b.done()
		}, harness.StatusNotApplicable, []string{"fewer than 3 calls"}},
		{"the bound follows the declared backoff", GivesUpPromptly{}, func() *harness.History {
			h := exhausted(20, 60*ms)()
			ct := backoffContract(1)
			ct.BackoffBase, ct.BackoffCap = time.Second, 0
			h.Profile.Default = ct
			return h
		}, harness.StatusPass, []string{"returned 60ms"}},
		{"no server truth", GivesUpPromptly{}, func() *harness.History {
			b := newHB()
			b.okCalls("inventory", 0, time.Second, 10*ms, 2*ms, false, 1)
			return b.done()
		}, harness.StatusNotApplicable, []string{"no server-side truth"}},
	})
}

func TestBackoffBounded(t *testing.T) {
	const ms = time.Millisecond
	capped := backoffContract(0)
	capped.BackoffBase, capped.BackoffCap = 50*ms, 60*ms
	history := func(ct harness.Contract, wait func(n int) time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB()
			b.h.Profile.Default = ct
			retriedCalls(b, 30, wait)
			return b.done()
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	load := func(w func(int) time.Duration) func(int) time.Duration {
		return func(n int) time.Duration { return w(n) + time.Duration(rng.Int64N(int64(8*ms))) }
	}
	runCheckCases(t, []checkCase{
		{"within the cap on a loaded machine", BackoffBounded{}, history(capped, load(func(n int) time.Duration { return backoffCeiling(capped, n) })), harness.StatusPass,
			[]string{"judged: [inventory retry 1 (30 waits) inventory retry 2 (30 waits)]"}},
		{"the cap ignored", BackoffBounded{}, history(capped, func(n int) time.Duration { return 50 * ms << (n - 1) }), harness.StatusFail,
			[]string{"the median wait before retry 2 is 100ms over 30 waits, 50ms longer than before retry 1 (50ms), declared 10ms longer", "apply the cap"}},
		{"within the cap on a machine stretching every wait by up to 30ms", BackoffBounded{}, history(capped, func(n int) time.Duration {
			return backoffCeiling(capped, n) + time.Duration(rng.Int64N(int64(30*ms)))
		}), harness.StatusPass, nil},
		{"a delay in seconds, not milliseconds", BackoffBounded{}, history(backoffContract(1), func(n int) time.Duration { return 20 * time.Second }), harness.StatusFail,
			[]string{"the median wait before retry"}},
		{"full jitter far below its ceiling", BackoffBounded{}, history(backoffContract(1), func(n int) time.Duration {
			return time.Duration(rng.Int64N(int64(backoffCeiling(backoffContract(1), n))))
		}), harness.StatusPass, nil},
		{"no backoff declared", BackoffBounded{}, history(fullContract, func(int) time.Duration { return time.Second }), harness.StatusNotApplicable, []string{"declare max_attempts >= 2 and backoff_base"}},
		{"too few waits", BackoffBounded{}, func() *harness.History {
			b := newHB()
			b.h.Profile.Default = capped
			retriedCalls(b, 3, func(int) time.Duration { return time.Second })
			return b.done()
		}, harness.StatusNotApplicable, []string{"fewer than 8 waits"}},
	})
}
