package check

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// PoolBound fails when a service saw more connections from the client
// open at once than the contract's MaxConns.
//
// The server's PeakOpen counts a connection until the server sees it close,
// which through Toxiproxy (and on docker, the port forwarder in front of it)
// can be long after the client dropped it: a client whose connection dies
// or that closes one and dials the next at once could be charged with both.
// So the check also rebuilds the peak from the connections' accepted/closed
// times and the requests they carried, and takes the smaller of the two
// peaks. A connection is surely held by the client from its accept until
// the last request the server handled on it ends. After that, in its idle
// tail, the server cannot see whether the client keeps it or has dropped it
// and the close is still on its way; the evidence is what the client does
// next. A pool dials only when it has no live idle connection (and a client
// that does otherwise is judged by PoolChurn), so a connection accepted
// during another's idle tail, when that other closes within ReplaceWindow
// after, is its replacement: the idle tail ends at the replacement's
// accept. Each accept replaces at most one connection, the one closing
// first. Other idle tails end CloseLag before the server saw the close. A
// pool that really holds too many connections carries requests on all of
// them at once, which neither rule shortens, and fails either way.
type PoolBound struct {
	// MaxConns overrides the contract's MaxConns for every service (0: the
	// history's Profile.For(service).MaxConns).
	MaxConns int `json:"max_conns,omitempty"`
	// MaxInFlight overrides the contract's MaxInFlight for every service
	// (0: the history's; not judged when neither declares one).
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// CloseLag is how late the server may see a close (default 20ms).
	CloseLag time.Duration `json:"close_lag,omitempty"`
	// ReplaceWindow is how long after a replacement's accept the connection
	// it replaced may close (default 1s: on docker under load the server
	// was seen to learn of a client's close ~300ms late).
	ReplaceWindow time.Duration `json:"replace_window,omitempty"`
}

func (PoolBound) ID() string { return IDPoolBound }

func (c PoolBound) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "connections")
	lag := cmp.Or(c.CloseLag, 20*time.Millisecond)
	window := cmp.Or(c.ReplaceWindow, time.Second)
	type result struct {
		svc         string
		peak, bound int
		serverPeak  int
	}
	var (
		worst  *result
		judged []string
	)
	for _, svc := range h.Services {
		st, ok := serverTruth(h, svc)
		if !ok {
			continue
		}
		bound := cmp.Or(c.MaxConns, contractFor(h, svc).MaxConns, harness.UndeclaredPoolBound(h.Workload))
		peak := st.PeakOpen
		if len(st.Connections) > 0 {
			peak = min(peak, overlapPeak(st, lag, window))
		}
		r := result{svc: svc, peak: peak, bound: bound, serverPeak: st.PeakOpen}
		judged = append(judged, svc)
		if worst == nil || r.peak-r.bound > worst.peak-worst.bound {
			worst = &r
		}
	}
	if worst == nil {
		return v.NotApplicable("no server-side truth: the servers' connections could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	}
	flight := c.inFlight(h)
	if flight != nil && flight.peak > flight.bound && (worst.peak <= worst.bound || flight.peak-flight.bound > worst.peak-worst.bound) {
		v.Unit = "calls in flight"
		return v.Fail(float64(flight.peak), float64(flight.bound), fmt.Sprintf("%s had %d calls in flight at once on %s, more than the declared max of %d (MaxInFlight): a pool bounds calls, not only connections; on HTTP/2 many calls share one connection, so cap the concurrent calls too",
			flight.svc, flight.peak, h.Protocol, flight.bound))
	}
	if worst.peak <= worst.bound {
		if flight != nil {
			return v.Pass(float64(worst.peak), float64(worst.bound), fmt.Sprintf("at most %d connections open at once to %s (bound %d) and at most %d calls in flight to %s (bound %d); services judged: %v",
				worst.peak, worst.svc, worst.bound, flight.peak, flight.svc, flight.bound, judged))
		}
		return v.Pass(float64(worst.peak), float64(worst.bound), fmt.Sprintf("at most %d connections open at once to %s (bound %d); services judged: %v",
			worst.peak, worst.svc, worst.bound, judged))
	}
	declared := "the declared max"
	if c.MaxConns == 0 && contractFor(h, worst.svc).MaxConns == 0 {
		declared = "twice its concurrent callers (no MaxConns declared)"
	}
	return v.Fail(float64(worst.peak), float64(worst.bound), fmt.Sprintf("%s saw %d connections open at once (server peak %d), more than %s of %d: cap the pool (e.g. Transport.MaxConnsPerHost) and make callers wait for a free connection",
		worst.svc, worst.peak, worst.serverPeak, declared, worst.bound))
}

// flightPeak is one service's most calls in flight at once against its bound.
type flightPeak struct {
	svc         string
	peak, bound int
}

// inFlight is the service whose peak of calls in flight (server-side
// requests being handled at once, from the request log) stands worst
// against the declared MaxInFlight; nil when no service declares one.
func (c PoolBound) inFlight(h *harness.History) *flightPeak {
	var worst *flightPeak
	for _, svc := range h.Services {
		bound := cmp.Or(c.MaxInFlight, contractFor(h, svc).MaxInFlight)
		st, ok := serverTruth(h, svc)
		if bound <= 0 || !ok {
			continue
		}
		r := flightPeak{svc: svc, peak: requestsPeak(st), bound: bound}
		if worst == nil || r.peak-r.bound > worst.peak-worst.bound {
			worst = &r
		}
	}
	return worst
}

// requestsPeak is the most requests st was handling at once; a request
// still running when the truth was read counts until then.
func requestsPeak(st *fakeservers.Stats) int {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := make([]edge, 0, 2*len(st.Requests))
	for _, r := range st.Requests {
		end := r.Finished
		if end.IsZero() {
			end = st.Now
		}
		edges = append(edges, edge{r.Arrived, 1}, edge{end, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // an end before a start at the same instant
	})
	peak, n := 0, 0
	for _, e := range edges {
		n += e.delta
		peak = max(peak, n)
	}
	return peak
}

// overlapPeak is the most connections of st open at once, each surely held
// from its accept until the last request it carried ended, and its idle
// tail after that ending at the accept of its replacement (see
// PoolBound), or else lag before the server saw it close.
func overlapPeak(st *fakeservers.Stats, lag, window time.Duration) int {
	lastUse := make(map[uint64]time.Time, len(st.Connections))
	for _, r := range st.Requests {
		// A request left unanswered (status 0: the client gave up, or the
		// connection died) is surely held only until it arrived: the
		// server learns late that the client dropped the connection, and
		// the client may already have dialled its replacement.
		t := r.Arrived
		if r.Status != 0 && r.Finished.After(t) {
			t = r.Finished
		}
		if t.After(lastUse[r.ConnID]) {
			lastUse[r.ConnID] = t
		}
	}
	conns := make([]tailedConn, len(st.Connections))
	for i, cn := range st.Connections {
		busyEnd := cn.Accepted
		if lu := lastUse[cn.ID]; lu.After(busyEnd) {
			busyEnd = lu
		}
		tc := tailedConn{accepted: cn.Accepted, busyEnd: busyEnd, closed: cn.Closed}
		if !cn.Closed.IsZero() {
			tc.end = cn.Closed.Add(-lag)
			if tc.end.Before(busyEnd) {
				tc.end = busyEnd
			}
		}
		conns[i] = tc
	}
	endAtReplacements(conns, window)

	type event struct {
		at    int64
		delta int
	}
	events := make([]event, 0, 2*len(conns))
	for _, tc := range conns {
		events = append(events, event{tc.accepted.UnixNano(), +1})
		if !tc.closed.IsZero() {
			events = append(events, event{tc.end.UnixNano(), -1})
		}
	}
	// At equal times a close goes first: a connection closed as the next
	// one opens is not two at once.
	slices.SortFunc(events, func(a, b event) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.delta, b.delta)
	})
	open, peak := 0, 0
	for _, e := range events {
		open += e.delta
		peak = max(peak, open)
	}
	return peak
}

// tailedConn is one connection as overlapPeak judges it: surely held from
// accepted to busyEnd, counted until end (zero closed: still open).
type tailedConn struct {
	accepted, busyEnd, closed, end time.Time
}

// endAtReplacements ends, for each accept in time order, the idle tail of
// at most one other connection: among those idle (busyEnd before the
// accept) and closing after it but within window, the one closing first.
func endAtReplacements(conns []tailedConn, window time.Duration) {
	byAccept := make([]int, len(conns))
	var tails []int // connections with an idle tail, by busyEnd
	for i, tc := range conns {
		byAccept[i] = i
		if !tc.closed.IsZero() && tc.closed.After(tc.busyEnd) {
			tails = append(tails, i)
		}
	}
	slices.SortStableFunc(byAccept, func(a, b int) int { return conns[a].accepted.Compare(conns[b].accepted) })
	slices.SortStableFunc(tails, func(a, b int) int { return conns[a].busyEnd.Compare(conns[b].busyEnd) })
	idle := &byClose{conns: conns}
	next := 0
	for _, y := range byAccept {
		at := conns[y].accepted
		// Strictly before: a connection is never its own replacement.
		for next < len(tails) && conns[tails[next]].busyEnd.Before(at) {
			heap.Push(idle, tails[next])
			next++
		}
		for idle.Len() > 0 && !conns[idle.idx[0]].closed.After(at) {
			heap.Pop(idle) // closed before this accept: nothing to replace
		}
		if idle.Len() == 0 || conns[idle.idx[0]].closed.Sub(at) > window {
			continue
		}
		x := heap.Pop(idle).(int)
		if at.Before(conns[x].end) {
			conns[x].end = at
		}
	}
}

// byClose is a min-heap of connection indexes by close time.
type byClose struct {
	conns []tailedConn
	idx   []int
}

func (b *byClose) Len() int { return len(b.idx) }
func (b *byClose) Less(i, j int) bool {
	return b.conns[b.idx[i]].closed.Before(b.conns[b.idx[j]].closed)
}
func (b *byClose) Swap(i, j int) { b.idx[i], b.idx[j] = b.idx[j], b.idx[i] }
func (b *byClose) Push(x any)    { b.idx = append(b.idx, x.(int)) }
func (b *byClose) Pop() any {
	x := b.idx[len(b.idx)-1]
	b.idx = b.idx[:len(b.idx)-1]
	return x
}

// PoolChurn fails when, in steady state, the client opens new
// connections instead of reusing its pool: connections accepted after the
// warm-up and outside fault windows that may cost connections (each
// extended by the declared recovery time, since reconnecting after a fault
// is expected), per 1000 calls started in the same span. Windows whose
// faults all answer whole (5xx, 429, delays) count as steady state: a
// client that throws away the connection of every 5xx it retries churns
// there. Calls the client refused itself (breaker open, pool full) are not
// counted. A client that opens a connection per request measures ~1000.
type PoolChurn struct {
	// MaxPer1000 is the bound (default 5 new connections per 1000 calls).
	MaxPer1000 float64 `json:"max_per_1000,omitempty"`
	// WarmUp is skipped at the start of the run (default 20% of the run).
	WarmUp time.Duration `json:"warm_up,omitempty"`
	// MinCalls is the fewest steady-state calls a service needs to be judged
	// (default 200): with fewer, one legitimate reconnect weighs too much.
	MinCalls int `json:"min_calls,omitempty"`
}

func (PoolChurn) ID() string { return IDPoolChurn }

// certainChurn is how many new connections beyond the pool's max in steady
// state are judged churn even with fewer than MinCalls calls.
const certainChurn = 10

func (c PoolChurn) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "conns/1000 calls")
	bound := cmp.Or(c.MaxPer1000, 5)
	minCalls := cmp.Or(c.MinCalls, 200)
	end := h.End()
	warm := cmp.Or(c.WarmUp, end/5)
	type result struct {
		svc                  string
		conns, growth, calls int
		rate                 float64
	}
	var (
		worst   *result
		noTruth bool
		short   []string
	)
	for _, svc := range h.Services {
		st, ok := serverTruth(h, svc)
		if !ok {
			noTruth = true
			continue
		}
		windows := connectionFaultWindows(h, svc)
		rt := contractFor(h, svc).RecoveryTime
		for i := range windows {
			windows[i].End += rt
		}
		steady := func(t time.Duration) bool { return t >= warm && t < end && !inAny(windows, t) }
		// Calls the client refused itself (its breaker open, its pool full)
		// used no connection: counted, they would dilute the churn of
		// those that did.
		calls := 0
		for _, cl := range serviceCalls(h, svc, warm, end) {
			if steady(time.Duration(cl.Start)) && cl.Class != harness.ClassCircuitOpen && cl.Class != harness.ClassPoolExhausted {
				calls++
			}
		}
		// A client that dials lazily may still be growing its pool after the
		// warm-up, when concurrency first peaks: connections that fill the
		// pool up to its declared max are growth, not churn. Past the max,
		// every new connection replaces one, whatever the client did.
		conns, openAtWarm := 0, 0
		for _, cn := range st.Connections {
			accepted := offset(h, cn.Accepted)
			if steady(accepted) {
				conns++
			}
			if accepted < warm && (cn.Closed.IsZero() || offset(h, cn.Closed) >= warm) {
				openAtWarm++
			}
		}
		growth := max(0, cmp.Or(contractFor(h, svc).MaxConns, h.Workload.Callers())-openAtWarm)
		churned := max(0, conns-growth)
		// Few calls make one legitimate reconnect weigh too much, but
		// certainChurn connections beyond the pool's max are churn however
		// few the calls (a client dialing per call on a slow machine).
		if calls == 0 || (calls < minCalls && churned < certainChurn) {
			short = append(short, fmt.Sprintf("%s %d", svc, calls))
			continue
		}
		r := result{svc: svc, conns: churned, growth: min(conns, growth), calls: calls, rate: float64(churned) * 1000 / float64(calls)}
		if worst == nil || r.rate > worst.rate {
			worst = &r
		}
	}
	if worst == nil {
		if noTruth && len(short) == 0 {
			return v.NotApplicable("no server-side truth: the servers' connections could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
		}
		return v.NotApplicable(fmt.Sprintf("too few steady-state calls (after the %s warm-up, outside faults that cost connections) to judge churn: %v, need %d", harness.FormatDuration(warm), short, minCalls))
	}
	measured := math.Round(worst.rate*100) / 100
	if worst.rate <= bound {
		return v.Pass(measured, bound, fmt.Sprintf("%s: %d new connections for %d steady-state calls (besides %d that grew the pool toward its max): the pool reuses its connections", worst.svc, worst.conns, worst.calls, worst.growth))
	}
	return v.Fail(measured, bound, fmt.Sprintf("%s: %d new connections beyond the pool's max for %d steady-state calls (after the %s warm-up, outside faults that cost connections): keep connections alive and reuse them: read every response body to EOF and close it, keep enough idle connections (MaxIdleConnsPerHost), do not disable keep-alive",
		worst.svc, worst.conns, worst.calls, harness.FormatDuration(warm)))
}

// PoolExhaustion drives the client far past its pool with a known
// service latency L (injected by the scenario) and fails when calls queue
// instead of failing fast: the p99 latency of the service's calls must stay
// within L + PoolWait + margin, where margin is max(MarginMin, MarginFrac x
// (L + PoolWait)). PoolWait is the call's: the contract's PoolWait, or for a
// client that declares its wait per attempt MaxAttempts x AttemptPoolWait,
// whose backoffs between attempts the margin covers. A client that queues
// without limit measures about (offered concurrency / pool size) x L. Calls
// inside the service's fault windows are judged when it has any (the
// latency is injected then), else every call of the service.
//
// Optionally (GoroutinesPerCall > 0) it also fails when the process's
// goroutines during the run (the samplers' count, which excludes the
// harness's own but includes the environment's few per connection) exceed
// GoroutinesPerCall x the offered concurrency + GoroutineSlack: a client that
// parks a goroutine per queued call, or several, grows with the load.
type PoolExhaustion struct {
	// Service is the exhausted service; "" judges every service of the run.
	Service string `json:"service,omitempty"`
	// Latency is the service latency the scenario injected; 0 makes the
	// check not applicable.
	Latency time.Duration `json:"latency,omitempty"`
	// PoolWait overrides the contract's per-call pool wait (0: from the
	// profile, derived from AttemptPoolWait when only that is declared).
	PoolWait   time.Duration `json:"pool_wait,omitempty"`
	MarginMin  time.Duration `json:"margin_min,omitempty"`  // default 250ms
	MarginFrac float64       `json:"margin_frac,omitempty"` // default 0.5
	// GoroutinesPerCall, when > 0, bounds goroutines per unit of offered
	// concurrency (workers, or open-loop max in flight).
	GoroutinesPerCall float64 `json:"goroutines_per_call,omitempty"`
	// GoroutineSlack is added to the goroutine bound (default 50).
	GoroutineSlack int `json:"goroutine_slack,omitempty"`
	// MinCalls is the fewest calls needed to take a p99 (default 20).
	MinCalls int `json:"min_calls,omitempty"`
}

func (PoolExhaustion) ID() string { return IDPoolExhaustion }

func (c PoolExhaustion) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	if c.Latency <= 0 {
		return v.NotApplicable("the scenario declared no injected service latency, so the queueing bound is unknown")
	}
	marginMin := cmp.Or(c.MarginMin, 250*time.Millisecond)
	marginFrac := cmp.Or(c.MarginFrac, 0.5)
	minCalls := cmp.Or(c.MinCalls, defaultMinCalls)
	type result struct {
		svc        string
		p99, bound time.Duration
		n          int
		wait       time.Duration
		waitFrom   string // how the contract derived wait, "" when declared
	}
	var worst *result
	undeclared := 0
	for _, svc := range servicesOrAll(h, c.Service) {
		wait, waitFrom := c.PoolWait, ""
		if wait == 0 {
			ct := contractFor(h, svc)
			wait, waitFrom = ct.PoolWait, perAttempt(ct, ct.PoolWait, ct.AttemptPoolWait)
		}
		if wait <= 0 {
			undeclared++
			continue
		}
		var calls []harness.CallRecord
		if ws := harness.FaultWindows(h, svc); len(ws) > 0 {
			for _, w := range ws {
				calls = append(calls, serviceCalls(h, svc, w.Start, w.End)...)
			}
		} else {
			calls = serviceCalls(h, svc, 0, h.End()+1)
		}
		if len(calls) < minCalls {
			continue
		}
		base := c.Latency + wait
		bound := base + max(marginMin, time.Duration(marginFrac*float64(base)))
		p99 := percentile(latencies(calls, nil), 0.99)
		r := result{svc: svc, p99: p99, bound: bound, n: len(calls), wait: wait, waitFrom: waitFrom}
		if worst == nil || float64(r.p99)/float64(r.bound) > float64(worst.p99)/float64(worst.bound) {
			worst = &r
		}
	}
	if worst == nil && undeclared > 0 {
		return v.NotApplicable("the client declares no pool wait: it does not promise to fail fast when its pool is exhausted; declare pool_wait (Contract.PoolWait) to have it judged")
	}
	if worst == nil {
		return v.NotApplicable(fmt.Sprintf("fewer than %d calls to judge under exhaustion", minCalls))
	}
	if worst.p99 > worst.bound {
		return v.Fail(ms(worst.p99), ms(worst.bound), fmt.Sprintf("%s: p99 latency %s over %d calls under pool exhaustion, more than latency %s + pool wait %s%s + margin: calls queue for a connection without limit; fail a call that waited PoolWait for a free connection (ErrPoolExhausted)",
			worst.svc, harness.FormatDuration(worst.p99), worst.n, harness.FormatDuration(c.Latency), harness.FormatDuration(worst.wait), worst.waitFrom))
	}
	if c.GoroutinesPerCall > 0 && len(h.Samples) > 0 {
		offered := h.Workload.Callers()
		limit := int(c.GoroutinesPerCall*float64(offered)) + cmp.Or(c.GoroutineSlack, 50)
		peak, at := int32(0), int64(0)
		for _, s := range h.Samples {
			if s.Goroutines > peak {
				peak, at = s.Goroutines, s.At
			}
		}
		if int(peak) > limit {
			v.Unit = "goroutines"
			return v.Fail(float64(peak), float64(limit), fmt.Sprintf("%d goroutines at %s for an offered concurrency of %d: the client parks goroutines per queued call; bound the waiters and fail fast",
				peak, harness.FormatDuration(time.Duration(at)), offered))
		}
	}
	return v.Pass(ms(worst.p99), ms(worst.bound), fmt.Sprintf("%s: p99 latency %s over %d calls under pool exhaustion, within latency %s + pool wait %s%s + margin: calls fail fast instead of queueing",
		worst.svc, harness.FormatDuration(worst.p99), worst.n, harness.FormatDuration(c.Latency), harness.FormatDuration(worst.wait), worst.waitFrom))
}
