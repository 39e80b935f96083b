package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// givenUpRun builds a history of `callers` inventory callers, each making
// one call after another for 2s and giving up on each after 100ms (a
// timeout), against a server that would take 1s; the server's request of
// each call ends `stops` after the call returned (a cancel reaching it),
// or, when stops < 0, runs its whole second. Requests arrive `arrives`
// after their call started.
func givenUpRun(callers int, stops time.Duration) func() *harness.History {
	return givenUpRunArriving(callers, stops, time.Millisecond)
}

func givenUpRunArriving(callers int, stops, arrives time.Duration) func() *harness.History {
	const ms = time.Millisecond
	return func() *harness.History {
		b := newHB(fakeservers.Inventory)
		b.h.Workload.Workers = callers
		for w := range callers {
			for at := time.Duration(w) * ms; at < 2*time.Second; at += 100 * ms {
				seq := b.call(fakeservers.Inventory, at, 100*ms, 0, harness.ClassTimeout)
				took, status := time.Second-arrives, 200
				if stops >= 0 {
					took, status = max(0, 100*ms-arrives+stops), 0
				}
				b.attempt(fakeservers.Inventory, seq, at+arrives, took, status, uint64(w+1))
			}
		}
		b.truth(fakeservers.Inventory).Now = b.at(3 * time.Second)
		return b.done()
	}
}

func TestAbandonedWork(t *testing.T) {
	answered := func() *harness.History {
		b := newHB(fakeservers.Inventory)
		b.okCalls(fakeservers.Inventory, 0, 2*time.Second, 10*time.Millisecond, 20*time.Millisecond, true, 1)
		return b.done()
	}
	h2 := func(build func() *harness.History, maxInFlight int) func() *harness.History {
		return func() *harness.History {
			h := build()
			h.Protocol = harness.ProtocolHTTP2
			h.Profile.Default.MaxInFlight = maxInFlight
			return h
		}
	}
	runCheckCases(t, []checkCase{
		// 12 callers, each leaving a 1s request behind every 100ms: ~120
		// at once against 16 + 4.
		{"requests left running after the caller gave up", AbandonedWork{}, givenUpRun(12, -1), harness.StatusFail,
			[]string{"more than the declared bound + margin of 20", "had returned to their caller over 500ms before", "pass the caller's context down"}},
		// A cancel that reaches the server 50ms late overlaps each caller's
		// next request: 24 at once, none orphaned past the grace.
		{"requests cancelled with their call, the cancel landing late", AbandonedWork{}, givenUpRun(12, 50*time.Millisecond), harness.StatusPass,
			[]string{"their work ended with them", "at most 0 requests orphaned", "at most 24 in flight"}},
		// 40 callers at once over a pool of 16 is pool.bound's failure, not
		// work left behind.
		{"more calls than the pool, each cancelled", AbandonedWork{}, givenUpRun(40, 5*time.Millisecond), harness.StatusPass,
			[]string{"at most 0 requests orphaned", "at most 44 in flight"}},
		// Dials slower than the callers' patience: every request arrives
		// after its caller gave up, and runs on.
		{"requests sent after the caller gave up, left running", AbandonedWork{}, givenUpRunArriving(12, -1, 150*time.Millisecond), harness.StatusFail,
			[]string{"more than the declared bound + margin of 20"}},
		{"on HTTP/2 the declared calls in flight bound it", AbandonedWork{}, h2(givenUpRun(12, -1), 16), harness.StatusFail,
			[]string{"bound + margin of 20"}},
		{"on HTTP/2 without MaxInFlight, twice the callers bound it", AbandonedWork{}, h2(givenUpRun(12, -1), 0), harness.StatusFail,
			[]string{"bound + margin of 32"}},
		{"no caller gave up", AbandonedWork{}, answered, harness.StatusNotApplicable,
			[]string{"0 calls ended while their request was unanswered", "abandoned-work"}},
	})
}
