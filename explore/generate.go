package explore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

// Fault kinds the generator draws: every Toxiproxy toxic, every fake-server
// fault, restarts, hangs, keep-alive changes, and the workload shapes the
// catalog uses to reach pool bugs (many callers behind a slow server,
// callers that give up, idle gaps between bursts).
const (
	KindBlackhole         = "blackhole"           // timeout toxic, 0: answers vanish
	KindConnectStall      = "connect-stall"       // upstream timeout toxic + dropped connections: handshakes never complete
	KindResetPeer         = "reset-peer"          // reset_peer toxic
	KindLatency           = "latency"             // latency toxic with jitter
	KindBandwidth         = "bandwidth"           // bandwidth toxic
	KindSlowClose         = "slow-close"          // slow_close toxic
	KindSlicer            = "slicer"              // slicer toxic: fragmented responses
	KindLimitData         = "limit-data"          // limit_data toxic
	KindTimeoutToxic      = "timeout-close"       // timeout toxic > 0: data stops, the connection closes later
	KindStatus            = "status"              // 5xx answers
	KindRetryAfter        = "retry-after"         // 429 (or 503) with Retry-After
	KindProcessThenFail   = "process-then-fail"   // the server commits, then resets or answers 500
	KindCutBody           = "cut-body"            // part of the body, then close
	KindCloseAfterHeaders = "close-after-headers" // headers, then close
	KindSlowBody          = "slow-body"           // body trickled
	KindSlowServer        = "slow-server"         // every answer delayed: with many callers, pool exhaustion
	KindAbandon           = "abandon"             // a slow server and callers that give up first
	KindRestart           = "restart"             // proxy disabled, then enabled
	KindHang              = "hang"                // one service hangs in an open loop: isolation, breaker
	KindKeepAlive         = "keepalive"           // the server closes idle connections early or after N requests
	KindIdleGaps          = "idle-gaps"           // few callers with long pauses: idle timeout, max lifetime
)

// Kinds lists every fault kind the generator draws, in a stable order.
var Kinds = []string{
	KindBlackhole, KindConnectStall, KindResetPeer, KindLatency, KindBandwidth, KindSlowClose, KindSlicer,
	KindLimitData, KindTimeoutToxic, KindStatus, KindRetryAfter, KindProcessThenFail, KindCutBody,
	KindCloseAfterHeaders, KindSlowBody, KindSlowServer, KindAbandon, KindRestart, KindHang, KindKeepAlive, KindIdleGaps,
}

// KindDocs says in a few words what each kind does, for poolproof list.
var KindDocs = map[string]string{
	KindBlackhole:         "timeout toxic, 0: answers vanish",
	KindConnectStall:      "upstream timeout toxic + dropped connections: handshakes never complete",
	KindResetPeer:         "reset_peer toxic",
	KindLatency:           "latency toxic with jitter",
	KindBandwidth:         "bandwidth toxic",
	KindSlowClose:         "slow_close toxic",
	KindSlicer:            "slicer toxic: fragmented responses",
	KindLimitData:         "limit_data toxic",
	KindTimeoutToxic:      "timeout toxic > 0: data stops, the connection closes later",
	KindStatus:            "5xx answers",
	KindRetryAfter:        "429 (or 503) with Retry-After",
	KindProcessThenFail:   "the server commits, then resets or answers 500",
	KindCutBody:           "part of the body, then close",
	KindCloseAfterHeaders: "headers, then close",
	KindSlowBody:          "body trickled",
	KindSlowServer:        "every answer delayed: with many callers, pool exhaustion",
	KindAbandon:           "a slow server and callers that give up first",
	KindRestart:           "proxy disabled, then enabled",
	KindHang:              "one service hangs in an open loop: isolation, breaker",
	KindKeepAlive:         "the server closes idle connections early or after N requests",
	KindIdleGaps:          "few callers with long pauses: idle timeout, max lifetime",
}

// Workload bounds of a generated case: short, so a budget of minutes runs
// many cases.
const (
	MinDuration = 3 * time.Second
	MaxDuration = 8 * time.Second
	// recoveryTail is what a fault whose checks judge recovery leaves after
	// it: the gallery's declared recovery time (3s) and a second to measure.
	recoveryTail = 4 * time.Second
)

// Generate draws case number index of an exploration seeded with seed: a
// valid scenario named after its own seed, which it carries (Scenario.Seed),
// so the file alone replays it. Everything comes from a PCG seeded with
// (seed, index): the same pair gives the same scenario.
func Generate(seed uint64, index int) harness.Scenario {
	r := rand.New(rand.NewPCG(seed, uint64(index)))
	caseSeed := int64(r.Uint64()>>2) + 1 // positive: 0 would mean "the default seed"
	g := &gen{r: r}
	return g.scenario(caseSeed)
}

// gen draws one case.
type gen struct {
	r *rand.Rand
}

// fault is one drawn fault before it is written as steps.
type fault struct {
	kind    string
	service string
}

// draft is the case being drawn.
type draft struct {
	w        harness.Workload
	steps    []harness.Step
	checks   harness.Checks
	families []string
	churnOK  bool // no fault kills connections: pool.churn is judged
	goodput  *check.Goodput
	faultsN  int
	summary  []string
}

func (g *gen) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return roundTo(lo+time.Duration(g.r.Int64N(int64(hi-lo)+1)), 100*time.Millisecond)
}

func (g *gen) intBetween(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// share draws a probability in [lo, hi], rounded to 0.05.
func (g *gen) share(lo, hi float64) float64 {
	v := lo + g.r.Float64()*(hi-lo)
	return max(0.05, float64(int(v*20+0.5))/20)
}

func (g *gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

func roundTo(d, unit time.Duration) time.Duration { return (d + unit/2) / unit * unit }

func (g *gen) scenario(caseSeed int64) harness.Scenario {
	// One or two faults most of the time: small cases shrink and read
	// better; a few cases with none or three.
	var n int
	switch p := g.r.IntN(100); {
	case p < 8:
		n = 0
	case p < 63:
		n = 1
	case p < 90:
		n = 2
	default:
		n = 3
	}
	var faults []fault
	taken := map[string]bool{} // "<service>/<resource>": one http fault set, one proxy switch, one keep-alive per service
	for range n {
		for range 8 { // a few tries to find a kind whose service is free
			f := fault{kind: Kinds[g.r.IntN(len(Kinds))]}
			f.service = g.serviceFor(f.kind)
			key := f.service + "/" + resourceOf(f.kind)
			if resourceOf(f.kind) != "" && taken[key] {
				continue
			}
			if workloadShape(f.kind) != "" && slices.ContainsFunc(faults, func(o fault) bool { return workloadShape(o.kind) != "" }) {
				continue // one workload shape per case
			}
			taken[key] = true
			faults = append(faults, f)
			break
		}
	}

	d := &draft{churnOK: true}
	d.w = harness.Workload{Mode: harness.ClosedLoop, Duration: g.between(MinDuration, MaxDuration), Workers: g.intBetween(2, 24)}
	if g.r.IntN(4) == 0 {
		d.w.ThinkTime = time.Duration(g.intBetween(1, 20)) * time.Millisecond
	}
	for _, f := range faults {
		switch workloadShape(f.kind) {
		case "open":
			d.w.Mode = harness.OpenLoop
			d.w.Workers, d.w.ThinkTime = 0, 0
			d.w.Rate = float64(g.intBetween(5, 20) * 10)
			d.w.MaxInFlight = int(d.w.Rate)
		case "crowd":
			d.w.Workers = g.intBetween(48, 96)
			d.w.ThinkTime = 0
		case "idle":
			d.w.Workers = g.intBetween(1, 3)
			d.w.ThinkTime = g.between(1200*time.Millisecond, 2*time.Second)
		}
	}
	// The mix: every faulted service is driven, the others sometimes.
	weights := map[string]int{}
	for _, f := range faults {
		weights[f.service] = g.intBetween(1, 3)
	}
	for _, svc := range fakeservers.Services {
		if _, ok := weights[svc]; !ok && (len(faults) == 0 || g.r.IntN(2) == 0) {
			weights[svc] = g.r.IntN(3)
		}
	}
	if slices.ContainsFunc(faults, func(f fault) bool { return f.kind == KindHang }) {
		// Isolation is judged on the other services: drive at least one.
		other := g.pick(fakeservers.Inventory, fakeservers.Notification)
		if weights[other] == 0 && !slices.ContainsFunc(faults, func(f fault) bool { return f.kind == KindHang && f.service == other }) {
			weights[other] = g.intBetween(1, 3)
		}
	}
	d.w.Mix = harness.Mix{Inventory: weights[fakeservers.Inventory], Payment: weights[fakeservers.Payment], Notification: weights[fakeservers.Notification]}
	if d.w.Mix.Inventory+d.w.Mix.Payment+d.w.Mix.Notification == 0 {
		d.w.Mix.Inventory = 1
	}
	d.w.KeyedCharges = g.r.IntN(3) == 0 && !slices.ContainsFunc(faults, func(f fault) bool { return f.kind == KindProcessThenFail })

	for i, f := range faults {
		g.addFault(d, i+1, f)
	}
	for _, f := range faults {
		if f.kind != KindHang {
			continue
		}
		// isolation blames every failure of the other services during the
		// hang on the hang: judge it only when they have no fault of their own.
		if slices.ContainsFunc(faults, func(o fault) bool { return o.service != f.service }) {
			d.checks = slices.DeleteFunc(d.checks, func(c harness.Check) bool { return c.ID() == check.IDIsolation })
		}
	}
	if d.w.Caller == (harness.CallerLimits{}) && g.r.IntN(6) == 0 {
		d.w.Caller = harness.CallerLimits{DeadlineShare: g.share(0.1, 0.4), Deadline: g.between(100*time.Millisecond, 500*time.Millisecond)}
	}

	checks := append(harness.Checks(check.Leaks()), check.NoHang{}, check.PoolBound{}, check.IntegrityDigest{}, check.RetryAttempts{}, check.Ledger{})
	if d.churnOK && d.w.Caller == (harness.CallerLimits{}) {
		checks = append(checks, check.PoolChurn{})
	}
	if d.w.Caller != (harness.CallerLimits{}) {
		checks = append(checks, check.CallerDeadline{})
	}
	if len(faults) == 0 {
		checks = append(checks, check.Goodput{}, check.MetricsTruthful{})
	} else if d.goodput != nil && len(faults) == 1 {
		checks = append(checks, *d.goodput)
	}
	for _, c := range d.checks {
		if !slices.ContainsFunc(checks, func(o harness.Check) bool { return o.ID() == c.ID() }) {
			checks = append(checks, c)
		}
	}
	family := harness.FamilyLeak
	if len(d.families) > 0 {
		family = d.families[0]
	}
	name := "explore-" + strconv.FormatInt(caseSeed, 36)
	proves := "a generated case with no fault: the client keeps its pool, its bodies and its resources under a random workload"
	if len(d.summary) > 0 {
		proves = "a generated case: " + strings.Join(d.summary, "; ")
	}
	slices.SortStableFunc(d.steps, func(a, b harness.Step) int { return int(a.At - b.At) })
	return harness.Scenario{
		Name: name, Proves: proves, Family: family, Seed: caseSeed,
		Workload: d.w, Steps: d.steps, Checks: checks,
	}
}

// resourceOf is what a kind holds on its service, so that two faults of a
// case never fight over it: "" when the kind can share (toxics).
func resourceOf(kind string) string {
	switch kind {
	case KindStatus, KindRetryAfter, KindProcessThenFail, KindCutBody, KindCloseAfterHeaders, KindSlowBody, KindSlowServer, KindAbandon:
		return "http"
	case KindRestart, KindConnectStall, KindHang:
		return "proxy"
	case KindKeepAlive:
		return "keepalive"
	case KindIdleGaps:
		return "idle"
	}
	return ""
}

// workloadShape is the workload a kind needs: "open" (an open loop, so one
// service's stuck calls do not slow the others by construction), "crowd"
// (more callers than any pool), "idle" (few callers, long pauses) or "".
func workloadShape(kind string) string {
	switch kind {
	case KindHang:
		return "open"
	case KindSlowServer:
		return "crowd"
	case KindIdleGaps:
		return "idle"
	}
	return ""
}

func (g *gen) serviceFor(kind string) string {
	switch kind {
	case KindProcessThenFail:
		return g.pick(fakeservers.Payment, fakeservers.Payment, fakeservers.Inventory)
	case KindSlowServer, KindAbandon, KindSlowBody, KindIdleGaps:
		return fakeservers.Inventory // the routes these faults shape are the item reads
	}
	return fakeservers.Services[g.r.IntN(len(fakeservers.Services))]
}

// routeOf is the route and method of the service's operation.
func routeOf(svc string) (route, method string) {
	switch svc {
	case fakeservers.Payment:
		return fakeservers.RouteCharges, "POST"
	case fakeservers.Notification:
		return fakeservers.RouteNotifications, "POST"
	}
	return fakeservers.RouteItem, "GET"
}

// window draws a fault window [at, until) inside the workload, leaving
// tail after it.
func (g *gen) window(d *draft, minLen, maxLen, tail time.Duration) (at, until time.Duration) {
	if d.w.Duration < minLen+tail+200*time.Millisecond {
		d.w.Duration = min(MaxDuration, minLen+tail+200*time.Millisecond+g.between(0, time.Second))
	}
	latest := d.w.Duration - tail - minLen - 100*time.Millisecond
	at = g.between(0, min(latest, d.w.Duration/3))
	length := g.between(minLen, min(maxLen, d.w.Duration-tail-at-100*time.Millisecond))
	return at, at + length
}

func (g *gen) toxicity() float32 {
	// Below 1: only a share of the connections meet the toxic.
	return float32(g.share(0.2, 0.95))
}

// addFault writes fault number n of the case as steps and adds its checks.
func (g *gen) addFault(d *draft, n int, f fault) {
	svc := f.service
	tag := fmt.Sprintf("f%d", n)
	route, method := routeOf(svc)
	step := func(at time.Duration, label string, a harness.Action) {
		d.steps = append(d.steps, harness.Step{At: at, Label: "[" + tag + "] " + label, Action: a})
	}
	toxic := func(at, until time.Duration, label string, t harness.Toxic) {
		t.Name = tag + "-" + t.Type
		step(at, label+" on "+svc, harness.AddToxic(svc, t))
		step(until, label+" removed", harness.RemoveToxic(svc, t.Name))
	}
	httpFault := func(at, until time.Duration, label string, faults ...fakeservers.Fault) {
		label = strings.TrimSuffix(label, fmt.Sprintf(" for %v", until-at)) // a shrink may shorten the window
		step(at, label, harness.SetHTTPFaults(svc, faults...))
		if until > 0 {
			step(until, label+": over", harness.ClearHTTPFaults(svc))
		}
	}
	family := func(fam string) { d.families = append(d.families, fam) }
	add := func(cs ...harness.Check) { d.checks = append(d.checks, cs...) }
	d.faultsN++
	var what string
	switch f.kind {
	case KindBlackhole:
		at, until := g.window(d, time.Second, 5*time.Second, 300*time.Millisecond)
		stream := g.pick(harness.Downstream, harness.Downstream, harness.Upstream)
		what = fmt.Sprintf("blackhole (%s) on %s for %v", stream, svc, until-at)
		toxic(at, until, "blackhole "+stream, harness.Timeout("", stream, 0, harness.WithToxicity(g.toxicity())))
		add(check.RequestBound{})
		family(harness.FamilyTimeout)
		d.churnOK = false
	case KindConnectStall:
		at, until := g.window(d, time.Second, 4*time.Second, 300*time.Millisecond)
		what = fmt.Sprintf("new connections to %s never complete for %v", svc, until-at)
		name := tag + "-stall"
		step(at, "handshakes to "+svc+" stall", harness.AddToxic(svc, harness.Timeout(name, harness.Upstream, 0)))
		step(at, svc+" drops its open connections", harness.DisableProxy(svc))
		step(at, svc+" accepts connections again (that never complete)", harness.EnableProxy(svc))
		step(until, "handshakes complete again", harness.RemoveToxic(svc, name))
		add(check.RequestBound{}, check.ConnectTimeout{Service: svc})
		family(harness.FamilyTimeout)
		d.churnOK = false
	case KindResetPeer:
		at, until := g.window(d, 300*time.Millisecond, 2*time.Second, 300*time.Millisecond)
		tox := g.toxicity()
		what = fmt.Sprintf("%.0f%% of connections to %s reset for %v", tox*100, svc, until-at)
		toxic(at, until, fmt.Sprintf("reset_peer %.0f%%", tox*100), harness.ResetPeer("", harness.Upstream, time.Duration(g.r.IntN(3)*10)*time.Millisecond, harness.WithToxicity(tox)))
		add(check.RequestBound{}, check.RetryBackoff{Service: svc})
		family(harness.FamilyRecovery)
		d.churnOK = false
	case KindLatency:
		at, until := g.window(d, 500*time.Millisecond, 4*time.Second, 300*time.Millisecond)
		lat := g.between(50*time.Millisecond, 800*time.Millisecond)
		jit := roundTo(time.Duration(g.r.Int64N(int64(lat/2)+1)), 10*time.Millisecond)
		tox := g.toxicity()
		what = fmt.Sprintf("latency %v ±%v on %.0f%% of %s connections for %v", lat, jit, tox*100, svc, until-at)
		toxic(at, until, fmt.Sprintf("latency %v ±%v", lat, jit), harness.Latency("", harness.Downstream, lat, jit, harness.WithToxicity(tox)))
		add(check.RequestBound{})
		family(harness.FamilyPool)
	case KindBandwidth:
		at, until := g.window(d, 500*time.Millisecond, 3*time.Second, 300*time.Millisecond)
		rate := int64(g.intBetween(1, 50))
		what = fmt.Sprintf("bandwidth %d KB/s on %s for %v", rate, svc, until-at)
		toxic(at, until, fmt.Sprintf("bandwidth %d KB/s", rate), harness.Bandwidth("", harness.Downstream, rate, harness.WithToxicity(g.toxicity())))
		add(check.RequestBound{})
		family(harness.FamilyTimeout)
		d.churnOK = false
	case KindSlowClose:
		at, until := g.window(d, 500*time.Millisecond, 3*time.Second, 300*time.Millisecond)
		delay := g.between(50*time.Millisecond, 800*time.Millisecond)
		what = fmt.Sprintf("slow close %v on %s for %v", delay, svc, until-at)
		toxic(at, until, fmt.Sprintf("slow_close %v", delay), harness.SlowClose("", harness.Downstream, delay, harness.WithToxicity(g.toxicity())))
		family(harness.FamilyLeak)
	case KindSlicer:
		size := g.intBetween(8, 128)
		delay := time.Duration(g.intBetween(0, 2)) * time.Millisecond
		what = fmt.Sprintf("%s responses in ~%d-byte fragments %v apart", svc, size, delay)
		name := tag + "-slicer"
		step(0, what, harness.AddToxic(svc, harness.Slicer(name, harness.Downstream, size, size/2, delay, harness.WithToxicity(g.toxicity()))))
		d.goodput = &check.Goodput{}
		family(harness.FamilyPool)
	case KindLimitData:
		at, until := g.window(d, 300*time.Millisecond, 2*time.Second, 300*time.Millisecond)
		bytes := int64(g.intBetween(200, 4000))
		tox := float32(g.share(0.1, 0.6))
		what = fmt.Sprintf("%.0f%% of %s connections cut after %d bytes for %v", tox*100, svc, bytes, until-at)
		toxic(at, until, fmt.Sprintf("limit_data %d bytes", bytes), harness.LimitData("", harness.Downstream, bytes, harness.WithToxicity(tox)))
		add(check.RequestBound{})
		family(harness.FamilyRecovery)
		d.churnOK = false
	case KindTimeoutToxic:
		at, until := g.window(d, 500*time.Millisecond, 3*time.Second, 300*time.Millisecond)
		after := g.between(100*time.Millisecond, 1500*time.Millisecond)
		tox := float32(g.share(0.1, 0.6))
		what = fmt.Sprintf("%.0f%% of %s connections stall and close after %v, for %v", tox*100, svc, after, until-at)
		toxic(at, until, fmt.Sprintf("timeout %v", after), harness.Timeout("", harness.Downstream, after, harness.WithToxicity(tox)))
		add(check.RequestBound{})
		family(harness.FamilyTimeout)
		d.churnOK = false
	case KindStatus:
		p := g.share(0.1, 0.95)
		status := []int{500, 502, 503, 504}[g.r.IntN(4)]
		storm := p >= 0.8
		var at, until time.Duration
		if storm {
			at, until = g.window(d, 1300*time.Millisecond, 2500*time.Millisecond, recoveryTail)
		} else {
			at, until = g.window(d, time.Second, 6*time.Second, 300*time.Millisecond)
		}
		what = fmt.Sprintf("%s answers %d to %.0f%% of calls for %v", svc, status, p*100, until-at)
		httpFault(at, until, what, fakeservers.Fault{Name: tag, Kind: fakeservers.FaultStatus, Route: route, Method: method, Probability: p, Status: status})
		add(check.RetryBackoff{Service: svc}, check.BackoffGrows{Service: svc}, check.Jitter{Service: svc}, check.GivesUpPromptly{},
			check.AttemptsUsed{Service: svc}, check.BackoffBounded{Service: svc})
		if storm {
			add(check.BreakerOpens{Service: svc}, check.BreakerHalfOpen{Service: svc}, check.BreakerRecovers{Service: svc}, check.RecoveryThroughput{Service: svc})
			family(harness.FamilyBreaker)
		} else {
			family(harness.FamilyRetry)
		}
		if p <= 0.3 && svc == fakeservers.Inventory {
			// Only reads: goodput counts on the declared retries saving the
			// failed calls, and a careful client never resends a POST
			// without an Idempotency-Key (notifications, unkeyed charges),
			// whose failures then trip its breaker.
			d.goodput = &check.Goodput{Service: svc, FaultFailure: p}
		}
	case KindRetryAfter:
		at, until := g.window(d, time.Second, 6*time.Second, 300*time.Millisecond)
		p := g.share(0.1, 0.5)
		status := 429
		if g.r.IntN(4) == 0 {
			status = 503
		}
		what = fmt.Sprintf("%s answers %d with Retry-After: 1 to %.0f%% of calls for %v", svc, status, p*100, until-at)
		httpFault(at, until, what, fakeservers.Fault{Name: tag, Kind: fakeservers.FaultStatus, Route: route, Method: method, Probability: p, Status: status, RetryAfter: "1"})
		add(check.RetryAfter{RetryAfter: time.Second}, check.GivesUpPromptly{}, check.AttemptsUsed{Status: status, RetryAfter: time.Second})
		if g.r.IntN(2) == 0 {
			d.w.Caller = harness.CallerLimits{DeadlineShare: 0.3, Deadline: 150 * time.Millisecond, CancelShare: 0.2, CancelAfter: 100 * time.Millisecond}
		}
		family(harness.FamilyRetry)
	case KindProcessThenFail:
		at, until := g.window(d, time.Second, 6*time.Second, 300*time.Millisecond)
		p := g.share(0.1, 0.4)
		then := g.pick(fakeservers.ThenReset, fakeservers.ThenStatus)
		fl := fakeservers.Fault{Name: tag, Kind: fakeservers.FaultProcessThenFail, Route: route, Method: method, Probability: p, Then: then}
		if then == fakeservers.ThenStatus {
			fl.Status = 500
		}
		what = fmt.Sprintf("%s processes %.0f%% of calls, then fails them (%s) for %v", svc, p*100, then, until-at)
		httpFault(at, until, what, fl)
		if svc != fakeservers.Payment {
			add(check.RetryBackoff{Service: svc})
		}
		family(harness.FamilyRetry)
		d.churnOK = false
	case KindCutBody:
		at, until := g.window(d, 500*time.Millisecond, 4*time.Second, 300*time.Millisecond)
		p := g.share(0.1, 0.5)
		cut := g.intBetween(1, 300)
		what = fmt.Sprintf("%s cuts %.0f%% of bodies after %d bytes for %v", svc, p*100, cut, until-at)
		httpFault(at, until, what, fakeservers.Fault{Name: tag, Kind: fakeservers.FaultCutBody, Route: route, Method: method, Probability: p, CutAfterBytes: cut})
		family(harness.FamilyRecovery)
		d.churnOK = false
	case KindCloseAfterHeaders:
		at, until := g.window(d, 500*time.Millisecond, 4*time.Second, 300*time.Millisecond)
		p := g.share(0.1, 0.5)
		what = fmt.Sprintf("%s closes %.0f%% of connections after the headers for %v", svc, p*100, until-at)
		httpFault(at, until, what, fakeservers.Fault{Name: tag, Kind: fakeservers.FaultCloseAfterHeaders, Route: route, Method: method, Probability: p})
		family(harness.FamilyRecovery)
		d.churnOK = false
	case KindSlowBody:
		at, until := g.window(d, 500*time.Millisecond, 3*time.Second, 300*time.Millisecond)
		p := g.share(0.1, 0.6)
		bps := g.intBetween(20, 200)
		what = fmt.Sprintf("%s trickles %.0f%% of bodies at %d B/s for %v", svc, p*100, bps, until-at)
		httpFault(at, until, what, fakeservers.Fault{Name: tag, Kind: fakeservers.FaultSlowBody, Route: route, Method: method, Probability: p, BytesPerSecond: bps})
		add(check.RequestBound{})
		family(harness.FamilyTimeout)
		d.churnOK = false
	case KindSlowServer:
		delay := g.between(200*time.Millisecond, 800*time.Millisecond)
		what = fmt.Sprintf("%s answers after %v to %d callers", svc, delay, d.w.Workers)
		httpFault(0, 0, fmt.Sprintf("%s answers after %v", svc, delay), fakeservers.Fault{Name: tag, Kind: fakeservers.FaultDelay, Route: route, Method: method, Delay: fakeservers.Duration(delay)})
		add(check.RequestBound{}, check.PoolExhaustion{Service: svc, Latency: delay})
		family(harness.FamilyPool)
		d.churnOK = false
	case KindAbandon:
		delay := g.between(600*time.Millisecond, 1500*time.Millisecond)
		after := g.between(50*time.Millisecond, 200*time.Millisecond)
		d.w.Caller = harness.CallerLimits{CancelShare: 1, CancelAfter: after}
		what = fmt.Sprintf("%s answers after %v and every caller gives up after %v", svc, delay, after)
		httpFault(0, 0, fmt.Sprintf("%s answers after %v", svc, delay), fakeservers.Fault{Name: tag, Kind: fakeservers.FaultDelay, Route: route, Method: method, Delay: fakeservers.Duration(delay)})
		add(check.AbandonedWork{})
		family(harness.FamilyTimeout)
		d.churnOK = false
	case KindRestart:
		at, until := g.window(d, 300*time.Millisecond, 1500*time.Millisecond, recoveryTail)
		what = fmt.Sprintf("%s down for %v", svc, until-at)
		step(at, svc+" down", harness.DisableProxy(svc))
		step(until, svc+" back", harness.EnableProxy(svc))
		add(check.RecoveryThroughput{Service: svc}, check.RecoveryLatency{Service: svc}, check.BreakerRecovers{Service: svc})
		if d.w.ThinkTime == 0 {
			d.w.ThinkTime = 10 * time.Millisecond // throughput measures the client, not the CPU left free
		}
		family(harness.FamilyRecovery)
		d.churnOK = false
	case KindHang:
		at, until := g.window(d, 2*time.Second, 5*time.Second, 300*time.Millisecond)
		name := tag + "-hang"
		what = fmt.Sprintf("%s hangs for %v under an open loop of %v calls/s", svc, until-at, d.w.Rate)
		step(at, svc+" swallows every byte from the client", harness.AddToxic(svc, harness.Timeout(name, harness.Upstream, 0)))
		step(at, svc+" drops its open connections", harness.DisableProxy(svc))
		step(at, svc+" accepts connections again (that never complete)", harness.EnableProxy(svc))
		step(until, svc+" hang removed", harness.RemoveToxic(svc, name))
		add(check.Isolation{Down: svc}, check.BreakerOpens{Service: svc})
		family(harness.FamilyBreaker)
		d.churnOK = false
	case KindKeepAlive:
		var ka fakeservers.KeepAlive
		if g.r.IntN(2) == 0 {
			idle := g.between(100*time.Millisecond, 400*time.Millisecond)
			ka.IdleTimeout = fakeservers.Duration(idle)
			if d.w.ThinkTime == 0 {
				d.w.ThinkTime = idle + 5*time.Millisecond // calls just as the server closes
			}
			what = fmt.Sprintf("%s closes connections idle %v", svc, idle)
		} else {
			ka.MaxRequestsPerConn = g.intBetween(1, 20)
			what = fmt.Sprintf("%s closes a connection after %d requests", svc, ka.MaxRequestsPerConn)
		}
		step(0, what, harness.SetKeepAlive(svc, ka))
		family(harness.FamilyRecovery)
		d.churnOK = false
	case KindIdleGaps:
		what = fmt.Sprintf("%d callers pausing %v between calls", d.w.Workers, d.w.ThinkTime)
		add(check.ConnLifetime{}, check.IdleTimeout{})
		family(harness.FamilyPool)
		d.churnOK = false
	}
	d.summary = append(d.summary, what)
}
