package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// behindProxy makes svc a service the client called through a proxy, with
// n replicas whose truth the history holds; it returns their names.
func behindProxy(b *hb, svc string, n int) []string {
	b.truth(svc)
	b.h.ServerAfterRun[svc] = harness.ServerTruth{Err: "no server-side truth: the client's connections end at the proxy"}
	names := make([]string, n)
	for i := range names {
		names[i] = harness.ReplicaName(svc, i)
		b.truth(names[i])
	}
	return names
}

// proxiedCalls records calls to svc every `every` in [from, to), each
// answered by replica i%n on conn(i) with status; conn returns the
// connection of the i-th call (0: a new one per call) and mark sets how
// its request treated the connection.
func proxiedCalls(b *hb, svc string, reps []string, from, to, every time.Duration, status int, conn func(rep string, i int) uint64, mark func(*fakeservers.RequestRecord)) {
	i := 0
	for t := from; t < to; t += every {
		seq := b.call(svc, t, 2*time.Millisecond, status, harness.ClassNone)
		rep := reps[i%len(reps)]
		c := conn(rep, i)
		if c == 0 {
			c = b.conn(rep, t, t+2*time.Millisecond)
		}
		b.attempt(rep, seq, t, time.Millisecond, status, c)
		if mark != nil {
			st := b.truth(rep)
			mark(&st.Requests[len(st.Requests)-1])
		}
		i++
	}
}

func TestProxyChecks(t *testing.T) {
	const (
		inv = "inventory"
		ms  = time.Millisecond
		sec = time.Second
	)
	// pooled: 1000 calls over 10s through a proxy that keeps one
	// connection per replica open for the whole run.
	pooled := func() (*hb, []string) {
		b := newHB(inv)
		reps := behindProxy(b, inv, 3)
		conns := map[string]uint64{}
		for _, r := range reps {
			conns[r] = b.conn(r, 0, -1)
			b.truth(r).PeakOpen = 1
		}
		proxiedCalls(b, inv, reps, 0, 10*sec, 10*ms, 200, func(rep string, _ int) uint64 { return conns[rep] }, nil)
		return b, reps
	}
	perRequest := func(mark func(*fakeservers.RequestRecord)) func() *harness.History {
		return func() *harness.History {
			b := newHB(inv)
			reps := behindProxy(b, inv, 3)
			proxiedCalls(b, inv, reps, 0, 10*sec, 10*ms, 200, func(string, int) uint64 { return 0 }, mark)
			return b.done()
		}
	}
	runCheckCases(t, []checkCase{
		{"reuse: one connection per replica", UpstreamReuse{}, func() *harness.History { b, _ := pooled(); return b.done() }, harness.StatusPass,
			[]string{"inventory: 0 new upstream connections for 800 steady-state requests across its 3 replicas", "the proxy reuses its upstream connections"}},
		{"reuse: health checks' connections are not the proxy's traffic", UpstreamReuse{}, func() *harness.History {
			b, reps := pooled()
			for t := 3 * sec; t < 9*sec; t += 500 * ms {
				b.conn(reps[0], t, t+ms)
			}
			return b.done()
		}, harness.StatusPass, []string{"0 new upstream connections"}},
		{"reuse: HTTP/1.0 upstream", UpstreamReuse{}, perRequest(func(r *fakeservers.RequestRecord) { r.HTTP10, r.Close = true, true }), harness.StatusFail,
			[]string{"800 steady-state requests", "100% of the requests reached the replicas as HTTP/1.0", "proxy_http_version 1.1", `proxy_set_header Connection ""`}},
		{"reuse: Connection: close upstream", UpstreamReuse{}, perRequest(func(r *fakeservers.RequestRecord) { r.Close = true }), harness.StatusFail,
			[]string{"100% of the requests asked the replica to close the connection (Connection: close)"}},
		{"reuse: keep-alive allowed but not kept", UpstreamReuse{}, perRequest(nil), harness.StatusFail,
			[]string{"the requests allowed keep-alive, yet the proxy opened new connections", "keepalive N in the upstream block"}},
		{"reuse: not behind a proxy", UpstreamReuse{}, func() *harness.History { return newHB(inv).done() }, harness.StatusNotApplicable,
			[]string{"no service ran as replicas behind a proxy"}},

		{"bound: within the client's calls", UpstreamBound{}, func() *harness.History { b, _ := pooled(); return b.done() }, harness.StatusPass,
			[]string{"at most 1 upstream connections open at once", "within the 18 the client's concurrent calls could need (no bound stated)"}},
		{"bound: more than promised", UpstreamBound{MaxConns: 2}, func() *harness.History {
			b, reps := pooled()
			for range 4 {
				b.attempt(reps[1], b.call(inv, 5*sec, 50*ms, 200, harness.ClassNone), 5*sec, 40*ms, 200, b.conn(reps[1], 5*sec, 6*sec))
			}
			b.truth(reps[1]).PeakOpen = 5
			return b.done()
		}, harness.StatusFail, []string{"inventory-1 saw 5 upstream connections open at once (server peak 5), more than the 2 the configuration promises", "max_conns"}},

		{"errors: none", ProxyErrors{}, func() *harness.History { b, _ := pooled(); return b.done() }, harness.StatusPass,
			[]string{"0 of 1000 calls through the proxy failed"}},
		{"errors: 502s the proxy made", ProxyErrors{}, func() *harness.History {
			b, _ := pooled()
			for i := range 5 {
				b.call(inv, 5*sec+time.Duration(i)*ms, 20*ms, 502, harness.ClassNone)
			}
			return b.done()
		}, harness.StatusFail, []string{"5 of 1005 calls through the proxy failed as the client saw them: 5 by the proxy (502 x5)", "close idle upstream connections before the replicas do"}},
		{"errors: a replica's 503s passed on", ProxyErrors{}, func() *harness.History {
			b, reps := pooled()
			for i := range 5 {
				seq := b.call(inv, 5*sec+time.Duration(i)*ms, 20*ms, 503, harness.ClassNone)
				b.attempt(reps[1], seq, 5*sec+time.Duration(i)*ms, ms, 503, 1)
			}
			return b.done()
		}, harness.StatusFail, []string{"5 passed on (503 from inventory-1 x5)", "proxy_next_upstream ... http_503"}},
		{"errors: the client's own fast failures do not count", ProxyErrors{}, func() *harness.History {
			b, _ := pooled()
			for i := range 50 {
				b.call(inv, 5*sec+time.Duration(i)*ms, ms, 0, harness.ClassPoolExhausted)
			}
			return b.done()
		}, harness.StatusPass, []string{"0 of 1000 calls"}},
	})
}

func TestFailoverCheck(t *testing.T) {
	const (
		inv = "inventory"
		ms  = time.Millisecond
		sec = time.Second
	)
	// failing: inventory-1 fails from 2s to 4s; during it the proxy sends
	// it what share says (1: its fair share, 0: nothing), and from
	// `back` after the fault on it gets its share again.
	failing := func(share float64, back time.Duration, until time.Duration) func() *harness.History {
		return func() *harness.History {
			b := newHB(inv)
			reps := behindProxy(b, inv, 3)
			b.outage(reps[1], 2*sec, 4*sec)
			i := 0
			for t := time.Duration(0); t < until; t += 10 * ms {
				rep := reps[i%3]
				if rep == reps[1] && t >= 2*sec && t < 4*sec+back && (t >= 4*sec || float64(i%30)/30 >= share) {
					rep = reps[(i+1)%3]
				}
				seq := b.call(inv, t, 2*ms, 200, harness.ClassNone)
				b.attempt(rep, seq, t, ms, 200, 1)
				i++
			}
			return b.done()
		}
	}
	runCheckCases(t, []checkCase{
		{"taken out, back at once", Failover{Replica: "inventory-1"}, failing(0, 0, 8*sec), harness.StatusPass,
			[]string{"inventory-1: it got 0% of its fair share after the first 1s; it got requests again 0s after it recovered"}},
		{"kept its share while failing", Failover{Replica: "inventory-1"}, failing(1, 0, 8*sec), harness.StatusFail,
			[]string{"the proxy still sent it 33 of the 100 requests", "(99% of its fair share)", "does not take a failing replica out"}},
		{"back after 2.5s, 3s allowed", Failover{Replica: "inventory-1"}, failing(0, 2500*ms, 8*sec), harness.StatusPass,
			[]string{"it got requests again 2.5"}},
		{"back after 2.5s, 1s allowed", Failover{Replica: "inventory-1", ReturnWithin: sec}, failing(0, 2500*ms, 8*sec), harness.StatusFail,
			[]string{"inventory-1 got its first request 2.5", "more than the 1s allowed", "fail_timeout"}},
		{"never back", Failover{Replica: "inventory-1"}, failing(0, time.Hour, 8*sec), harness.StatusFail,
			[]string{"inventory-1 got no request in the 3.992s after it recovered (at 4s), more than the 3s allowed"}},
		{"the run ended too soon to tell", Failover{Replica: "inventory-1"}, failing(0, time.Hour, 5*sec), harness.StatusNotApplicable,
			[]string{"the run ended 992ms after inventory-1 recovered, before the 3s"}},
		{"no fault on the replica", Failover{Replica: "inventory-2"}, failing(0, 0, 8*sec), harness.StatusNotApplicable,
			[]string{"inventory-2 had no fault"}},
		{"not a replica", Failover{Replica: "inventory"}, failing(0, 0, 8*sec), harness.StatusNotApplicable,
			[]string{"not a replica's name"}},
	})
}

// Behind a proxy the payment replicas are one ledger: an order a proxy
// sent to two replicas is charged twice, and attempts count across them.
func TestLedgerAndAttemptsAcrossReplicas(t *testing.T) {
	const pay = "payment"
	b := newHB(pay)
	reps := behindProxy(b, pay, 3)
	once := b.call(pay, 0, 5*time.Millisecond, 201, harness.ClassNone)
	b.attempt(reps[0], once, time.Millisecond, time.Millisecond, 201, 1)
	b.truth(reps[0]).Charges[b.h.OrderID(once)] = 1
	twice := b.call(pay, 10*time.Millisecond, 5*time.Millisecond, 201, harness.ClassNone)
	b.attempt(reps[1], twice, 11*time.Millisecond, time.Millisecond, 0, 1)
	b.truth(reps[1]).Charges[b.h.OrderID(twice)] = 1
	b.attempt(reps[2], twice, 12*time.Millisecond, time.Millisecond, 201, 1)
	b.truth(reps[2]).Charges[b.h.OrderID(twice)] = 1
	h := b.done()

	v := Ledger{}.Judge(h)
	assert.Equal(t, harness.StatusFail, v.Status, "%s", v)
	assert.Contains(t, v.Reason, "order pp-synthetic-7-order-1 (request id pp-synthetic-7-1) was charged 2 times")

	merged, ok := requestTruth(h, pay)
	require.True(t, ok)
	var attempts []int
	ids := map[uint64]bool{}
	for _, r := range merged.Requests {
		if r.RequestID == h.RequestID(twice) {
			attempts = append(attempts, r.Attempt)
		}
		ids[r.ConnID] = true
	}
	assert.Equal(t, []int{1, 2}, attempts, "attempts numbered across replicas, in arrival order")
	assert.Len(t, ids, 3, "each replica's connection 1 is a connection of its own")

	delete(h.ServerAfterRun, reps[2])
	h.ServerAfterRun[harness.ReplicaName(pay, 2)] = harness.ServerTruth{Err: "unreachable"}
	_, ok = requestTruth(h, pay)
	assert.False(t, ok, "a replica whose truth is missing makes the ledger unknown")
}

func TestProxyChecksAreRegisteredAndDocumented(t *testing.T) {
	require.Len(t, ProxyChecks(), len(ProxyDocs()))
	for i, d := range ProxyDocs() {
		assert.Equal(t, d.ID, ProxyChecks()[i].ID())
		assert.Contains(t, harness.RegisteredChecks(), d.ID)
		assert.NotContains(t, AllIDs(), d.ID, "the client checks are a list of their own")
	}
}
