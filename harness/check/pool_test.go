package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

func TestPoolChecks(t *testing.T) {
	const (
		inv = "inventory"
		ms  = time.Millisecond
		sec = time.Second
	)
	pooled := func() *hb {
		b := newHB()
		for range 4 {
			b.conn(inv, 0, -1)
		}
		b.truth(inv).PeakOpen = 4
		b.okCalls(inv, 0, 10*sec, 5*ms, 2*ms, true, 1)
		return b
	}
	cases := []checkCase{
		{"bound: a pool of 4", PoolBound{}, func() *harness.History { return pooled().done() }, harness.StatusPass, []string{"at most 4 connections open at once to inventory (bound 16)"}},
		{"bound: 20 at once", PoolBound{}, func() *harness.History {
			b := pooled()
			for range 16 {
				b.conn(inv, sec, 2*sec)
			}
			b.truth(inv).PeakOpen = 20
			return b.done()
		}, harness.StatusFail, []string{"inventory saw 20 connections open at once (server peak 20), more than the declared max of 16", "cap the pool"}},
		{"bound: the profile's bound per service", PoolBound{}, func() *harness.History {
			b := pooled()
			b.h.Profile.Services = map[string]harness.Contract{inv: {MaxConns: 3}}
			return b.done()
		}, harness.StatusFail, []string{"more than the declared max of 3"}},
		{"bound: a close seen late is not an overlap", PoolBound{MaxConns: 5}, func() *harness.History {
			b := pooled()
			// The client closes connection 5 at 1s and opens 6 at once; the
			// server sees the close 5ms after the accept of the next.
			b.conn(inv, 500*ms, sec+5*ms)
			b.conn(inv, sec, -1)
			b.truth(inv).PeakOpen = 6
			return b.done()
		}, harness.StatusPass, []string{"at most 5 connections"}},
		{"bound: a request on the connection keeps it open", PoolBound{MaxConns: 5}, func() *harness.History {
			b := pooled()
			c5 := b.conn(inv, 500*ms, sec+5*ms)
			b.conn(inv, sec, -1)
			b.attempt(inv, b.call(inv, 990*ms, 14*ms, 200, harness.ClassNone), 992*ms, 10*ms, 200, c5) // busy until 1.002s
			b.truth(inv).PeakOpen = 6
			return b.done()
		}, harness.StatusFail, []string{"6 connections open at once"}},
		{"bound: a client's close seen 300ms late, after its replacement's accept, is not an overlap", PoolBound{MaxConns: 5}, func() *harness.History {
			// What docker showed: the client dropped connection 5 after its
			// last request and dialed 6; the server saw 6 accepted at
			// 1.05s and 5 closed only at 1.35s (far past CloseLag).
			b := pooled()
			c5 := b.conn(inv, 500*ms, 1350*ms)
			c6 := b.conn(inv, 1050*ms, -1)
			b.attempt(inv, b.call(inv, 990*ms, 14*ms, 200, harness.ClassNone), 992*ms, 10*ms, 200, c5)
			b.attempt(inv, b.call(inv, 1060*ms, 14*ms, 200, harness.ClassNone), 1062*ms, 10*ms, 200, c6)
			b.truth(inv).PeakOpen = 6
			return b.done()
		}, harness.StatusPass, []string{"at most 5 connections"}},
		{"bound: resets with late closes: each dead connection replaced once", PoolBound{MaxConns: 6}, func() *harness.History {
			// Two pooled connections die (reset_peer) and are replaced;
			// each replacement is itself reset in its TLS handshake and
			// replaced again; the server learns of every close late.
			b := pooled()
			b.conn(inv, 200*ms, 1080*ms)
			b.conn(inv, 200*ms, 1090*ms)
			b.conn(inv, 1010*ms, 1100*ms)
			b.conn(inv, 1020*ms, 1110*ms)
			b.conn(inv, 1050*ms, -1)
			b.conn(inv, 1060*ms, -1)
			b.truth(inv).PeakOpen = 8
			return b.done()
		}, harness.StatusPass, []string{"at most 6 connections"}},
		{"bound: one accept replaces only one idle connection", PoolBound{MaxConns: 5}, func() *harness.History {
			b := pooled()
			b.conn(inv, 500*ms, 1300*ms)
			b.conn(inv, 500*ms, 1300*ms)
			b.conn(inv, 1050*ms, -1)
			b.truth(inv).PeakOpen = 7
			return b.done()
		}, harness.StatusFail, []string{"inventory saw 6 connections open at once (server peak 7)"}},
		{"bound: an idle connection held past the replace window is the client's", PoolBound{MaxConns: 5}, func() *harness.History {
			b := pooled()
			b.conn(inv, 500*ms, 3*sec)
			b.conn(inv, 1050*ms, -1)
			b.truth(inv).PeakOpen = 6
			return b.done()
		}, harness.StatusFail, []string{"6 connections open at once"}},
		{"bound: busy connections are never replacements' victims", PoolBound{MaxConns: 5}, func() *harness.History {
			// An unbounded pool: six connections each carrying a request
			// at 1s, closed late; later accepts cannot shorten busy time.
			b := newHB()
			for range 6 {
				c := b.conn(inv, 0, 1200*ms)
				b.attempt(inv, b.call(inv, 990*ms, 100*ms, 200, harness.ClassNone), 995*ms, 90*ms, 200, c)
			}
			for range 6 {
				b.conn(inv, 1010*ms, -1)
			}
			b.truth(inv).PeakOpen = 12
			return b.done()
		}, harness.StatusFail, []string{"connections open at once"}},
		{"bound: no server truth", PoolBound{}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, sec, 10*ms, ms, false, 0)
			return b.done()
		}, harness.StatusNotApplicable, []string{"no server-side truth"}},

		{"churn: pooled", PoolChurn{}, func() *harness.History { return pooled().done() }, harness.StatusPass, []string{"inventory: 0 new connections for 1600 steady-state calls"}},
		{"churn: a connection per request", PoolChurn{}, func() *harness.History {
			b := pooled()
			for _, c := range b.h.Calls {
				b.conn(inv, time.Duration(c.Start), time.Duration(c.End))
			}
			return b.done()
		}, harness.StatusFail, []string{"inventory: 1588 new connections beyond the pool's max for 1600 steady-state calls", "keep connections alive"}},
		{"churn: a lazy pool growing to its max after the warm-up is not churn", PoolChurn{}, func() *harness.History {
			b := pooled() // 4 connections open from the start; the max is 16
			for range 12 {
				b.conn(inv, 6*sec, -1)
			}
			return b.done()
		}, harness.StatusPass, []string{"inventory: 0 new connections for 1600 steady-state calls (besides 12 that grew the pool toward its max)"}},
		{"churn: growth past the max is churn", PoolChurn{}, func() *harness.History {
			b := pooled()
			for range 24 {
				b.conn(inv, 6*sec, 7*sec)
			}
			return b.done()
		}, harness.StatusFail, []string{"inventory: 12 new connections beyond the pool's max for 1600 steady-state calls"}},
		{"churn: reconnects after a fault are expected", PoolChurn{}, func() *harness.History {
			b := pooled()
			b.step(4*sec, harness.DisableProxy(inv))
			b.step(5*sec, harness.EnableProxy(inv))
			for range 16 {
				b.conn(inv, 5*sec+100*ms, -1) // within the 3s recovery time
			}
			return b.done()
		}, harness.StatusPass, []string{"0 new connections"}},
		{"churn: too few calls", PoolChurn{}, func() *harness.History {
			b := newHB()
			b.conn(inv, 0, -1)
			b.okCalls(inv, 0, 10*sec, 100*ms, ms, true, 1)
			return b.done()
		}, harness.StatusNotApplicable, []string{"too few steady-state calls", "inventory 80"}},
		{"churn: a connection per call is judged even with few calls", PoolChurn{}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, 10*sec, 100*ms, ms, true, 1) // 80 steady-state calls, fewer than MinCalls
			for _, c := range b.h.Calls {
				b.conn(inv, time.Duration(c.Start), -1)
			}
			return b.done()
		}, harness.StatusFail, []string{"inventory: 80 new connections beyond the pool's max for 80 steady-state calls"}},
		{"churn: no server truth", PoolChurn{}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, 10*sec, 5*ms, ms, false, 0)
			return b.done()
		}, harness.StatusNotApplicable, []string{"no server-side truth"}},

		{"exhaustion: fails fast", PoolExhaustion{Service: inv, Latency: 200 * ms}, func() *harness.History {
			b := newHB()
			for i := range 200 {
				if i%4 == 0 {
					b.call(inv, time.Duration(i)*10*ms, 200*ms, 200, harness.ClassNone)
				} else {
					b.call(inv, time.Duration(i)*10*ms, 250*ms, 0, harness.ClassPoolExhausted)
				}
			}
			return b.done()
		}, harness.StatusPass, []string{"inventory: p99 latency 250ms over 200 calls"}},
		{"exhaustion: queues without limit", PoolExhaustion{Service: inv, Latency: 200 * ms}, func() *harness.History {
			b := newHB()
			for i := range 200 {
				// 64 workers on 4 connections: each call waits 16 x 200ms.
				b.call(inv, time.Duration(i)*10*ms, min(time.Duration(i+1)*200*ms, 3200*ms), 200, harness.ClassNone)
			}
			return b.done()
		}, harness.StatusFail, []string{"p99 latency 3.2s over 200 calls", "latency 200ms + pool wait 250ms", "calls queue"}},
		{"exhaustion: judged in the fault window", PoolExhaustion{Latency: 200 * ms}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, 2*sec, 10*ms, 5*sec, false, 0) // slow before the fault: not judged
			b.step(2*sec, harness.AddToxic(inv, harness.Latency("lat", harness.Downstream, 200*ms, 0)))
			b.okCalls(inv, 2*sec, 4*sec, 10*ms, 210*ms, false, 0)
			b.step(4*sec, harness.RemoveToxic(inv, "lat"))
			return b.done()
		}, harness.StatusPass, []string{"p99 latency 210ms over 200 calls"}},
		{"exhaustion: goroutines grow with the queue", PoolExhaustion{Service: inv, Latency: 200 * ms, GoroutinesPerCall: 2}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, 2*sec, 10*ms, 200*ms, false, 0)
			b.h.Samples = []harness.Sample{{At: int64(sec), Goroutines: 30}, {At: int64(1500 * ms), Goroutines: 5000}}
			return b.done()
		}, harness.StatusFail, []string{"5000 goroutines at 1.5s for an offered concurrency of 8"}},
		{"exhaustion: latency not declared", PoolExhaustion{Service: inv}, func() *harness.History { return pooled().done() }, harness.StatusNotApplicable, []string{"declared no injected service latency"}},
		{"exhaustion: too few calls", PoolExhaustion{Service: inv, Latency: 200 * ms}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, sec, 100*ms, 200*ms, false, 0)
			return b.done()
		}, harness.StatusNotApplicable, []string{"fewer than 20 calls"}},
	}
	runCheckCases(t, cases)
}

func TestPoolBoundHoldsCallsInFlightToMaxInFlight(t *testing.T) {
	// 2 connections carrying 6 overlapping requests: HTTP/2 multiplexing.
	b := newHB(fakeservers.Inventory)
	b.h.Protocol = harness.ProtocolHTTP2
	c1, c2 := b.conn(fakeservers.Inventory, 0, -1), b.conn(fakeservers.Inventory, 0, -1)
	for i := range 6 {
		seq := b.call(fakeservers.Inventory, time.Millisecond, 60*time.Millisecond, 200, harness.ClassNone)
		b.attempt(fakeservers.Inventory, seq, time.Millisecond, 50*time.Millisecond, 200, []uint64{c1, c2}[i%2])
	}
	b.truth(fakeservers.Inventory).PeakOpen = 2
	h := b.done()

	h.Profile = harness.Profile{Default: harness.Contract{MaxConns: 4}}
	undeclared := PoolBound{}.Judge(h)
	assert.Equal(t, harness.StatusPass, undeclared.Status, "without MaxInFlight only connections are judged: %s", undeclared.Reason)

	h.Profile.Default.MaxInFlight = 4
	v := PoolBound{}.Judge(h)
	assert.Equal(t, harness.StatusFail, v.Status, v.Reason)
	assert.Equal(t, 6.0, v.Measured)
	assert.Equal(t, 4.0, v.Bound)
	assert.Equal(t, "calls in flight", v.Unit)
	assert.Contains(t, v.Reason, "6 calls in flight at once on h2")

	h.Profile.Default.MaxInFlight = 6
	v = PoolBound{}.Judge(h)
	assert.Equal(t, harness.StatusPass, v.Status, v.Reason)
	assert.Contains(t, v.Reason, "at most 6 calls in flight")
}
