package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// poolParamsRun builds a history of inventory calls whose server-side
// attempts land on connections as conns says: conns returns, for the call
// at t, the connection to put it on (the builder records each connection
// once, when first named, with the accept and close times given).
type connPlan struct{ accepted, closed time.Duration }

func poolParamsRun(ct harness.Contract, calls []time.Duration, plan []connPlan, connOf func(time.Duration) int) func() *harness.History {
	return func() *harness.History {
		b := newHB(fakeservers.Inventory)
		b.h.Profile = harness.Profile{Default: ct}
		ids := make([]uint64, len(plan))
		for i, p := range plan {
			ids[i] = b.conn(fakeservers.Inventory, p.accepted, p.closed)
		}
		for _, at := range calls {
			seq := b.call(fakeservers.Inventory, at, 5*time.Millisecond, 200, harness.ClassNone)
			b.attempt(fakeservers.Inventory, seq, at+time.Millisecond, 3*time.Millisecond, 200, ids[connOf(at)])
		}
		b.truth(fakeservers.Inventory).Now = b.at(b.done().End() + 10*time.Millisecond)
		return b.h
	}
}

// every returns the times from `from` to `to` (excluded), step apart.
func every(from, to, step time.Duration) []time.Duration {
	var out []time.Duration
	for t := from; t < to; t += step {
		out = append(out, t)
	}
	return out
}

func TestConnLifetime(t *testing.T) {
	const ms = time.Millisecond
	ct := fullContract
	ct.MaxConnLifetime = 500 * ms // bound 1.5s
	steady := every(0, 4000*ms, 100*ms)
	one := func(time.Duration) int { return 0 }
	// rotating: a new connection every 400ms, closed when the next opens.
	var rotating []connPlan
	for i := range 10 {
		rotating = append(rotating, connPlan{time.Duration(i) * 400 * ms, time.Duration(i+1) * 400 * ms})
	}
	byAge := func(at time.Duration) int { return int(at / (400 * ms)) }
	undeclared := ct
	undeclared.MaxConnLifetime = 0
	runCheckCases(t, []checkCase{
		{"connections live forever", ConnLifetime{}, poolParamsRun(ct, steady, []connPlan{{0, -1}}, one), harness.StatusFail,
			[]string{"started on connections older than max_conn_lifetime + margin", "connection 1", "3.9", "retire a connection"}},
		{"connections retired at the lifetime", ConnLifetime{}, poolParamsRun(ct, steady, rotating, byAge), harness.StatusPass,
			[]string{"younger than max_conn_lifetime + margin", "bound 1.5s"}},
		{"no lifetime declared", ConnLifetime{}, poolParamsRun(undeclared, steady, []connPlan{{0, -1}}, one), harness.StatusNotApplicable,
			[]string{"declares no max_conn_lifetime", "declare max_conn_lifetime"}},
		{"the run is shorter than the lifetime", ConnLifetime{}, poolParamsRun(ct, every(0, 1200*ms, 100*ms), []connPlan{{0, -1}}, one), harness.StatusNotApplicable,
			[]string{"traffic spans 1.1s", "soak"}},
	})
}

func TestIdleTimeout(t *testing.T) {
	const ms = time.Millisecond
	ct := fullContract
	ct.IdleTimeout = 300 * ms // bound 1s
	// Traffic for a second, a 2s pause, traffic for another second.
	paused := append(every(0, 1000*ms, 100*ms), every(3000*ms, 4000*ms, 100*ms)...)
	one := func(time.Duration) int { return 0 }
	// closes: the first connection is closed 350ms into the pause, the
	// second opens when traffic resumes.
	closes := []connPlan{{0, 1250 * ms}, {3000 * ms, -1}}
	split := func(at time.Duration) int {
		if at < 2*time.Second {
			return 0
		}
		return 1
	}
	undeclared := ct
	undeclared.IdleTimeout = 0
	runCheckCases(t, []checkCase{
		{"idle connections kept through the pause", IdleTimeout{}, poolParamsRun(ct, paused, []connPlan{{0, -1}}, one), harness.StatusFail,
			[]string{"outlasted idle_timeout + margin", "connection 1", "a request arrived on it", "bound 1s", "close a connection"}},
		{"an idle connection left open until the run ended", IdleTimeout{}, func() *harness.History {
			h := poolParamsRun(ct, every(0, 1000*ms, 100*ms), []connPlan{{0, -1}}, one)()
			h.ServerAfterRun[fakeservers.Inventory].Stats.Now = h.Started.Add(3 * time.Second)
			return h
		}, harness.StatusFail, []string{"still open when the run ended", "1 idle stretches"}},
		{"idle connections closed within the timeout", IdleTimeout{}, poolParamsRun(ct, paused, closes, split), harness.StatusPass,
			[]string{"no connection of 2", "stayed idle past idle_timeout + margin", "(closed)"}},
		{"traffic never pauses", IdleTimeout{}, poolParamsRun(ct, every(0, 4000*ms, 100*ms), []connPlan{{0, -1}}, one), harness.StatusNotApplicable,
			[]string{"never paused for longer than idle_timeout 300ms + margin = 1s", "pool-idle-lifetime"}},
		{"a warm-up request before the workload started", IdleTimeout{}, func() *harness.History {
			h := poolParamsRun(ct, paused, []connPlan{{-50 * ms, -1}}, one)()
			st := h.ServerAfterRun[fakeservers.Inventory].Stats
			st.Requests = append(st.Requests, fakeservers.RequestRecord{ConnID: 1, Method: "HEAD", Status: 404,
				Arrived: h.Started.Add(-20 * ms), Finished: h.Started.Add(-19 * ms)})
			return h
		}, harness.StatusFail, []string{"outlasted idle_timeout + margin", "a request arrived on it"}},
		{"no idle timeout declared", IdleTimeout{}, poolParamsRun(undeclared, paused, []connPlan{{0, -1}}, one), harness.StatusNotApplicable,
			[]string{"declares no idle_timeout"}},
	})
}
