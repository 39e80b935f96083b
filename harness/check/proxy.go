package check

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// The proxy checks judge a reverse proxy between a well-behaved client and
// a service's replicas (harness.ReplicaName), from the replicas' truth and
// what the client saw. They are not about the client: the client checks
// (All, Docs) are, and every one of those has a broken client that fails
// it; these have a broken proxy configuration instead (package proxy's
// tests, proxies/README.md).

// Proxy check ids.
const (
	IDProxyUpstreamReuse = "proxy.upstream_reuse"
	IDProxyUpstreamBound = "proxy.upstream_bound"
	IDProxyErrors        = "proxy.errors"
	IDProxyFailover      = "proxy.failover"
)

var proxyDocs = []Doc{
	{IDProxyUpstreamReuse, "replica truth, enough steady-state requests", "new upstream connections per 1000 requests across a service's replicas in steady state (after warm-up, outside faults) stay near zero"},
	{IDProxyUpstreamBound, "replica truth", "peak connections open at once to each replica <= the bound the configuration promises (else the client's concurrent calls)"},
	{IDProxyErrors, "calls to a service behind the proxy", "calls that fail as the client sees them (answered 5xx by the proxy, or passed on from a replica, or cut) per 1000 calls stay bounded"},
	{IDProxyFailover, "a replica's fault window, replica truth", "while a replica fails the proxy sends it (almost) nothing after a grace, and sends it traffic again within the configuration's fail timeout after it recovers"},
}

// ProxyDocs lists the proxy checks, in report order.
func ProxyDocs() []Doc { return append([]Doc(nil), proxyDocs...) }

// ProxyChecks lists a zero value of every proxy check, in ProxyDocs order.
func ProxyChecks() []harness.Check {
	return []harness.Check{UpstreamReuse{}, UpstreamBound{}, ProxyErrors{}, Failover{}}
}

func init() {
	for _, c := range ProxyChecks() {
		harness.RegisterCheck(c)
	}
}

// UpstreamReuse fails when a proxy opens new upstream connections instead
// of reusing them: connections to a service's replicas accepted in steady
// state (after the warm-up, outside the fault windows of the service and
// of its replicas and Settle after them) that carried a request of the
// run, per 1000 requests of the run the replicas saw in the same span.
// Connections that carried none (a health check's) are not counted, nor
// those that grew the proxy's connections, after the warm-up, up to the
// client's concurrent calls (a proxy may open one per call in flight). A
// proxy that opens a connection per request measures ~1000; the reason
// says why from how the requests arrived: as HTTP/1.0 (nginx's default
// upstream protocol), asking to close ("Connection: close"), or allowing
// keep-alive that the proxy did not use.
type UpstreamReuse struct {
	// Service is the service behind the proxy ("" every one of the run).
	Service string `json:"service,omitempty"`
	// MaxPer1000 is the bound (default 10 new connections per 1000 requests).
	MaxPer1000 float64 `json:"max_per_1000,omitempty"`
	// WarmUp is skipped at the start of the run (default 20% of the run).
	WarmUp time.Duration `json:"warm_up,omitempty"`
	// Settle is skipped after each fault window (default 1s).
	Settle time.Duration `json:"settle,omitempty"`
	// MinRequests is the fewest steady-state requests judged (default 200).
	MinRequests int `json:"min_requests,omitempty"`
}

func (UpstreamReuse) ID() string { return IDProxyUpstreamReuse }

func (c UpstreamReuse) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "upstream conns/1000 requests")
	bound := cmp.Or(c.MaxPer1000, 10)
	minReq := cmp.Or(c.MinRequests, 200)
	settle := cmp.Or(c.Settle, time.Second)
	end := h.End()
	warm := cmp.Or(c.WarmUp, end/5)
	type result struct {
		svc                     string
		replicas                int
		conns, growth, requests int
		http10, closing         int
		perConn                 float64
		rate                    float64
	}
	var (
		worst *result
		short []string
	)
	services := proxiedServices(h, c.Service)
	for _, svc := range services {
		truths, _ := replicaTruths(h, svc)
		if len(truths) == 0 {
			continue
		}
		windows := proxyWindows(h, svc)
		for i := range windows {
			windows[i].End += settle
		}
		steady := func(t time.Duration) bool { return t >= warm && t < end && !inAny(windows, t) }
		r := result{svc: svc, replicas: len(truths)}
		allConns, allReqs, openAtWarm := 0, 0, 0
		for _, rt := range truths {
			reqs := runRequests(h, rt.st)
			carried := make(map[uint64]bool, len(reqs))
			for _, q := range reqs {
				carried[q.ConnID] = true
				if !steady(offset(h, q.Arrived)) {
					continue
				}
				r.requests++
				if q.HTTP10 {
					r.http10++
				}
				if q.Close {
					r.closing++
				}
			}
			for _, cn := range rt.st.Connections {
				if !carried[cn.ID] {
					continue
				}
				allConns++
				accepted := offset(h, cn.Accepted)
				if steady(accepted) {
					r.conns++
				}
				if accepted < warm && (cn.Closed.IsZero() || offset(h, cn.Closed) >= warm) {
					openAtWarm++
				}
			}
			allReqs += len(reqs)
		}
		if r.requests < minReq {
			short = append(short, fmt.Sprintf("%s %d", svc, r.requests))
			continue
		}
		r.growth = min(r.conns, max(0, h.Workload.Callers()-openAtWarm))
		r.rate = float64(r.conns-r.growth) * 1000 / float64(r.requests)
		if allConns > 0 {
			r.perConn = float64(allReqs) / float64(allConns)
		}
		if worst == nil || r.rate > worst.rate {
			worst = &r
		}
	}
	if worst == nil {
		if len(services) == 0 {
			return v.NotApplicable("no service ran as replicas behind a proxy: this check judges a proxy's upstream connections")
		}
		if len(short) == 0 {
			return v.NotApplicable("no replica truth: the replicas' connections could not be read")
		}
		return v.NotApplicable(fmt.Sprintf("too few steady-state requests at the replicas (after the %s warm-up, outside faults) to judge reuse: %v, need %d",
			harness.FormatDuration(warm), short, minReq))
	}
	measured := math.Round(worst.rate*100) / 100
	what := fmt.Sprintf("%s: %d new upstream connections for %d steady-state requests across its %d replicas, besides %d that grew toward the client's %d concurrent calls (%.1f requests per connection over the run)",
		worst.svc, worst.conns-worst.growth, worst.requests, worst.replicas, worst.growth, h.Workload.Callers(), worst.perConn)
	if worst.rate <= bound {
		return v.Pass(measured, bound, what+": the proxy reuses its upstream connections")
	}
	return v.Fail(measured, bound, what+": "+reuseCause(worst.http10, worst.closing, worst.requests))
}

// reuseCause says why a proxy did not reuse its upstream connections,
// from how its requests arrived at the replicas.
func reuseCause(http10, closing, requests int) string {
	pct := func(n int) int { return int(math.Round(100 * float64(n) / float64(requests))) }
	switch {
	case 2*http10 > requests:
		return fmt.Sprintf("%d%% of the requests reached the replicas as HTTP/1.0, which closes the connection after every response, so the proxy's keepalive cache stays empty: "+
			"nginx speaks HTTP/1.0 upstream unless told otherwise: add proxy_http_version 1.1 and proxy_set_header Connection \"\" beside keepalive", pct(http10))
	case 2*closing > requests:
		return fmt.Sprintf("%d%% of the requests asked the replica to close the connection (Connection: close), so each connection carried one: "+
			"nginx sends it unless proxy_set_header Connection \"\" (beside proxy_http_version 1.1); HAProxy with option httpclose", pct(closing))
	}
	return "the requests allowed keep-alive, yet the proxy opened new connections for them: it keeps too few idle upstream connections or closes them " +
		"(nginx: keepalive N in the upstream block, keepalive_requests; HAProxy: http-reuse, no option http-server-close)"
}

// UpstreamBound fails when a proxy holds more connections open at once to
// one replica than its configuration promises (nginx: max_conns on the
// server line, since keepalive only caps idle ones; HAProxy: maxconn),
// or, when nothing is promised, more than the client's concurrent calls
// could need. The peak is the server's, or the overlap of the
// connections' lives as PoolBound rebuilds it, whichever is smaller.
type UpstreamBound struct {
	// Service is the service behind the proxy ("" every one of the run).
	Service string `json:"service,omitempty"`
	// MaxConns is the promised bound per replica (0: none promised).
	MaxConns int `json:"max_conns,omitempty"`
	// CloseLag and ReplaceWindow are PoolBound's (defaults 20ms, 1s).
	CloseLag      time.Duration `json:"close_lag,omitempty"`
	ReplaceWindow time.Duration `json:"replace_window,omitempty"`
}

func (UpstreamBound) ID() string { return IDProxyUpstreamBound }

func (c UpstreamBound) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "connections")
	lag := cmp.Or(c.CloseLag, 20*time.Millisecond)
	window := cmp.Or(c.ReplaceWindow, time.Second)
	bound := cmp.Or(c.MaxConns, harness.UndeclaredPoolBound(h.Workload))
	var (
		worst            *replicaTruth
		peak, serverPeak int
		judged           int
	)
	for _, svc := range proxiedServices(h, c.Service) {
		truths, _ := replicaTruths(h, svc)
		for _, rt := range truths {
			p := rt.st.PeakOpen
			if len(rt.st.Connections) > 0 {
				p = min(p, overlapPeak(rt.st, lag, window))
			}
			judged++
			if worst == nil || p > peak {
				worst, peak, serverPeak = &rt, p, rt.st.PeakOpen
			}
		}
	}
	if worst == nil {
		return v.NotApplicable("no replica truth behind a proxy: this check judges a proxy's upstream connections")
	}
	promised := fmt.Sprintf("the %d the configuration promises", bound)
	if c.MaxConns == 0 {
		promised = fmt.Sprintf("the %d the client's concurrent calls could need (no bound stated)", bound)
	}
	if peak <= bound {
		return v.Pass(float64(peak), float64(bound), fmt.Sprintf("at most %d upstream connections open at once to %s, within %s; %d replicas judged", peak, worst.name, promised, judged))
	}
	return v.Fail(float64(peak), float64(bound), fmt.Sprintf("%s saw %d upstream connections open at once (server peak %d), more than %s: "+
		"nginx's keepalive caps idle connections only; max_conns on the server line limits them (HAProxy: maxconn on the server line)",
		worst.name, peak, serverPeak, promised))
}

// ProxyErrors fails when too many calls to the services behind a proxy
// fail as the client sees them: a 5xx answer or a broken connection. A 5xx
// that no replica gave for that request was made by the proxy itself (it
// lost the upstream connection, had no replica to send to, or timed out);
// one a replica gave was passed on instead of being tried on another
// replica. Failures the client made itself (pool exhausted, circuit open)
// and hangs (timeout.no_hang judges them) are not counted.
type ProxyErrors struct {
	// Service is the service behind the proxy ("" every one of the run).
	Service string `json:"service,omitempty"`
	// MaxPer1000 is the bound (default 2 failed calls per 1000).
	MaxPer1000 float64 `json:"max_per_1000,omitempty"`
}

func (ProxyErrors) ID() string { return IDProxyErrors }

// Kinds of proxyFailure.
const (
	failedByProxy  = "by the proxy" // a 5xx no replica gave
	failedPassedOn = "passed on"    // a replica's 5xx
	failedCut      = "cut"          // the connection to the proxy broke
)

// proxyFailure is one call through a proxy that failed as the client saw it.
type proxyFailure struct {
	call harness.CallRecord
	kind string
	from string // the replica whose answer was passed on
}

// label is the failure as a scorecard counts it: "502", "503 from
// inventory-1", "reset".
func (f proxyFailure) label() string {
	switch f.kind {
	case failedCut:
		return f.call.Class.String()
	case failedPassedOn:
		return fmt.Sprintf("%d from %s", f.call.Status, f.from)
	}
	return fmt.Sprint(f.call.Status)
}

// hint says what a proxy should do about the failure.
func (f proxyFailure) hint() string {
	switch {
	case f.kind == failedPassedOn:
		return fmt.Sprintf("the proxy passed %s's %d on instead of trying another replica (nginx: proxy_next_upstream ... http_%d, which also counts toward max_fails; HAProxy: retry-on %d with option redispatch, or observe layer7)",
			f.from, f.call.Status, f.call.Status, f.call.Status)
	case f.kind == failedCut:
		return "the client's connection to the proxy broke (" + f.call.Class.String() + ")"
	case f.call.Status == 504:
		return "the proxy gave up waiting for a replica (nginx: proxy_read_timeout, proxy_connect_timeout; HAProxy: timeout server, timeout connect)"
	}
	return "the proxy lost its upstream connection, or had no replica to send to, and tried no other: " +
		"close idle upstream connections before the replicas do (nginx: keepalive_timeout in the upstream block; HAProxy: pool-purge-delay, timeout server), " +
		"retry on the next replica what is safe to retry (nginx: proxy_next_upstream error; HAProxy: retry-on conn-failure empty-response), " +
		"and do not cap connections below the load without a queue (max_conns)"
}

func (c ProxyErrors) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "failed calls/1000")
	bound := cmp.Or(c.MaxPer1000, 2)
	services := proxiedServices(h, c.Service)
	if len(services) == 0 {
		return v.NotApplicable("no service ran as replicas behind a proxy: this check judges what a proxy did to the calls")
	}
	var (
		fails []proxyFailure
		calls int
	)
	for _, svc := range services {
		// the replica that answered each request id with each status
		answered := map[string]map[int]string{}
		truths, _ := replicaTruths(h, svc)
		for _, rt := range truths {
			for _, q := range runRequests(h, rt.st) {
				if answered[q.RequestID] == nil {
					answered[q.RequestID] = map[int]string{}
				}
				answered[q.RequestID][q.Status] = rt.name
			}
		}
		for _, cl := range serviceCalls(h, svc, 0, h.End()+1) {
			switch cl.Class {
			case harness.ClassPoolExhausted, harness.ClassCircuitOpen, harness.ClassHang:
				continue
			}
			calls++
			f := proxyFailure{call: cl}
			switch {
			case cl.Class != harness.ClassNone:
				f.kind = failedCut
			case cl.Status >= 500:
				f.kind = failedByProxy
				if from, ok := answered[h.RequestID(cl.Seq)][int(cl.Status)]; ok {
					f.kind, f.from = failedPassedOn, from
				}
			default:
				continue
			}
			fails = append(fails, f)
		}
	}
	if calls == 0 {
		return v.NotApplicable("no call reached a service behind the proxy")
	}
	rate := float64(len(fails)) * 1000 / float64(calls)
	measured := math.Round(rate*100) / 100
	if rate <= bound {
		return v.Pass(measured, bound, fmt.Sprintf("%d of %d calls through the proxy failed as the client saw them", len(fails), calls))
	}
	byKind := map[string][]proxyFailure{}
	kinds := map[string]int{}
	for _, f := range fails {
		byKind[f.kind] = append(byKind[f.kind], f)
		kinds[f.kind]++
	}
	var parts []string
	for _, k := range []string{failedByProxy, failedPassedOn, failedCut} {
		fs := byKind[k]
		if len(fs) == 0 {
			continue
		}
		labels := map[string]int{}
		for _, f := range fs {
			labels[f.label()]++
		}
		var ls []string
		for _, l := range byCount(labels) {
			ls = append(ls, fmt.Sprintf("%s x%d", l, labels[l]))
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(fs), k, strings.Join(ls, ", ")))
	}
	first := byKind[byCount(kinds)[0]][0]
	return v.Fail(measured, bound, fmt.Sprintf("%d of %d calls through the proxy failed as the client saw them: %s; e.g. %s got %s: %s",
		len(fails), calls, strings.Join(parts, "; "), callName(h, first.call), first.label(), first.hint()))
}

// Failover fails when a proxy keeps sending a failed replica its share of
// the requests, or does not send it any once it recovered. During each of
// the replica's fault windows, from Grace after its start, the replica
// may receive at most MaxShare of its fair share (1/replicas) of the
// requests its service's replicas received; after the window closes, a
// request must reach it within ReturnWithin (the configuration's fail
// timeout: nginx's fail_timeout, HAProxy's inter x rise, plus a margin).
// A replica whose connections are refused receives nothing either way:
// then only its return is judged, and proxy.errors judges what the
// refusals cost the client.
type Failover struct {
	// Replica is the replica the scenario fails, e.g. "inventory-1".
	Replica string `json:"replica"`
	// Grace is how long after the failure starts the proxy may still send
	// to it (default 1s): it learns of the failure from the requests.
	Grace time.Duration `json:"grace,omitempty"`
	// MaxShare is the share of its fair share it may still receive after
	// Grace (default 0.25).
	MaxShare float64 `json:"max_share,omitempty"`
	// ReturnWithin bounds how long after it recovers a request reaches it
	// again (default 3s).
	ReturnWithin time.Duration `json:"return_within,omitempty"`
	// MinRequests is the fewest requests after Grace in the window that
	// the share is judged on (default 50).
	MinRequests int `json:"min_requests,omitempty"`
}

func (Failover) ID() string { return IDProxyFailover }

func (c Failover) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	grace := cmp.Or(c.Grace, time.Second)
	maxShare := cmp.Or(c.MaxShare, 0.25)
	within := cmp.Or(c.ReturnWithin, 3*time.Second)
	minReq := cmp.Or(c.MinRequests, 50)
	svc, _, ok := harness.ReplicaOf(c.Replica)
	if !ok {
		return v.NotApplicable(fmt.Sprintf("Replica %q is not a replica's name (e.g. inventory-1)", c.Replica))
	}
	truths, missing := replicaTruths(h, svc)
	var mine []fakeservers.RequestRecord
	found := false
	for _, rt := range truths {
		if rt.name == c.Replica {
			mine, found = runRequests(h, rt.st), true
		}
	}
	if !found || missing > 0 {
		return v.NotApplicable(fmt.Sprintf("no truth of %s and every other replica of %s", c.Replica, svc))
	}
	windows := harness.FaultWindows(h, c.Replica)
	if len(windows) == 0 {
		return v.NotApplicable(fmt.Sprintf("%s had no fault in this run", c.Replica))
	}
	fair := 1 / float64(len(truths))
	type shareOf struct {
		w           harness.Window
		got, of     int
		ratio       float64
		returnAfter time.Duration
		returned    bool
	}
	var results []shareOf
	worstAt := -1
	for _, w := range windows {
		r := shareOf{w: w}
		from := w.Start + grace
		for _, rt := range truths {
			for _, q := range runRequests(h, rt.st) {
				if t := offset(h, q.Arrived); t >= from && t < w.End {
					r.of++
					if rt.name == c.Replica {
						r.got++
					}
				}
			}
		}
		if r.of >= minReq {
			r.ratio = float64(r.got) / float64(r.of) / fair
		}
		if w.Closed {
			if t, ok := firstArrival(h, mine, w.End); ok {
				r.returnAfter, r.returned = t-w.End, true
			}
		}
		results = append(results, r)
		if worstAt < 0 || r.ratio > results[worstAt].ratio {
			worstAt = len(results) - 1
		}
	}
	worst := results[worstAt]
	if worst.ratio > maxShare {
		v.Unit = "% of its fair share"
		return v.Fail(math.Round(worst.ratio*100), maxShare*100, fmt.Sprintf("while %s failed (%s), the proxy still sent it %d of the %d requests its replicas received after the first %s (%.0f%% of its fair share): "+
			"it does not take a failing replica out: count its failures (nginx: proxy_next_upstream with the failing statuses, max_fails; HAProxy: health checks, observe layer7 with on-error mark-down)",
			c.Replica, worst.w, worst.got, worst.of, harness.FormatDuration(grace), worst.ratio*100))
	}
	var last *shareOf
	for i := range results {
		if results[i].w.Closed {
			last = &results[i]
		}
	}
	if last == nil {
		return v.NotApplicable(fmt.Sprintf("%s's fault lasted to the end of the run: its return cannot be judged", c.Replica))
	}
	share := fmt.Sprintf("it got %.0f%% of its fair share after the first %s", worst.ratio*100, harness.FormatDuration(grace))
	if worst.of < minReq {
		share = fmt.Sprintf("too few requests (%d, need %d) to judge its share while it failed", worst.of, minReq)
	}
	if !last.returned {
		if h.End() < last.w.End+within {
			return v.NotApplicable(fmt.Sprintf("the run ended %s after %s recovered, before the %s its return is allowed; %s",
				harness.FormatDuration(h.End()-last.w.End), c.Replica, harness.FormatDuration(within), share))
		}
		return v.Fail(wholeMS(h.End()-last.w.End), wholeMS(within), fmt.Sprintf("%s got no request in the %s after it recovered (at %s), more than the %s allowed: the proxy keeps a recovered replica out too long (nginx: fail_timeout; HAProxy: inter x rise); %s",
			c.Replica, harness.FormatDuration(h.End()-last.w.End), harness.FormatDuration(last.w.End), harness.FormatDuration(within), share))
	}
	if last.returnAfter > within {
		return v.Fail(wholeMS(last.returnAfter), wholeMS(within), fmt.Sprintf("%s got its first request %s after it recovered (at %s), more than the %s allowed: the proxy keeps a recovered replica out too long (nginx: fail_timeout; HAProxy: inter x rise); %s",
			c.Replica, harness.FormatDuration(last.returnAfter), harness.FormatDuration(last.w.End), harness.FormatDuration(within), share))
	}
	return v.Pass(wholeMS(last.returnAfter), wholeMS(within), fmt.Sprintf("%s: %s; it got requests again %s after it recovered", c.Replica, share, harness.FormatDuration(last.returnAfter)))
}

// wholeMS is d in whole milliseconds, as a failover is measured.
func wholeMS(d time.Duration) float64 { return math.Round(ms(d)) }
