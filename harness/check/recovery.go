package check

import (
	"cmp"
	"fmt"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// recoveryMinSpan is the shortest baseline, and the shortest tail after
// recovery, the recovery checks judge by default.
const recoveryMinSpan = 500 * time.Millisecond

// Isolation fails when an outage of one service (Down) hurts the
// others: during Down's fault windows every other service's success rate
// must stay >= MinSuccess (default 0.99) and its p99 latency <= max(
// LatencyFactor x its p99 before the fault, p99 before + LatencySlack)
// (defaults 3 and 100ms). A client that shares one pool, one worker pool or
// one breaker across services fails it. The latency half needs a baseline of
// MinCalls calls before the fault (default 20); without one only the success
// rate is judged.
type Isolation struct {
	Down          string        `json:"down,omitempty"`
	MinSuccess    float64       `json:"min_success,omitempty"`
	LatencyFactor float64       `json:"latency_factor,omitempty"`
	LatencySlack  time.Duration `json:"latency_slack,omitempty"`
	MinCalls      int           `json:"min_calls,omitempty"`
}

func (Isolation) ID() string { return IDIsolation }

func (c Isolation) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "success rate")
	if c.Down == "" {
		return v.NotApplicable("the scenario named no service to take down")
	}
	ws := harness.FaultWindows(h, c.Down)
	if len(ws) == 0 {
		return v.NotApplicable(fmt.Sprintf("no fault window on %s: nothing was taken down", c.Down))
	}
	minOK := cmp.Or(c.MinSuccess, 0.99)
	factor := cmp.Or(c.LatencyFactor, 3)
	slack := cmp.Or(c.LatencySlack, 100*time.Millisecond)
	minCalls := cmp.Or(c.MinCalls, defaultMinCalls)
	first := ws[0].Start
	var (
		judged   []string
		worstOK  = 2.0
		worstSvc string
		notes    []string
	)
	for _, svc := range h.Services {
		if svc == c.Down {
			continue
		}
		var during []harness.CallRecord
		for _, w := range ws {
			during = append(during, serviceCalls(h, svc, w.Start, w.End)...)
		}
		if len(during) < minCalls {
			continue
		}
		judged = append(judged, svc)
		rate := successRate(during)
		if rate < minOK {
			return v.Fail(round4(rate), minOK, fmt.Sprintf("%s succeeded on only %d of %d calls while %s was down: the outage spilled over; give each service its own pool, limits and breaker",
				svc, int(rate*float64(len(during))+0.5), len(during), c.Down))
		}
		if rate < worstOK {
			worstOK, worstSvc = rate, svc
		}
		before := serviceCalls(h, svc, first/5, first)
		if len(before) < minCalls {
			notes = append(notes, svc+": no baseline before the fault, latency not judged")
			continue
		}
		p99b := percentile(latencies(before, nil), 0.99)
		p99d := percentile(latencies(during, nil), 0.99)
		bound := max(time.Duration(factor*float64(p99b)), p99b+slack)
		if p99d > bound {
			v.Unit = "ms"
			return v.Fail(ms(p99d), ms(bound), fmt.Sprintf("%s p99 latency rose from %s to %s while %s was down: calls to a healthy service waited behind the dead one; give each service its own pool and fail the dead one fast",
				svc, harness.FormatDuration(p99b), harness.FormatDuration(p99d), c.Down))
		}
	}
	if len(judged) == 0 {
		return v.NotApplicable(fmt.Sprintf("no other service had %d calls while %s was down", minCalls, c.Down))
	}
	reason := fmt.Sprintf("%v kept >= %.4g success and their latency while %s was down (lowest %s %.4g)", judged, minOK, c.Down, worstSvc, round4(worstOK))
	if len(notes) > 0 {
		reason += fmt.Sprintf("; %v", notes)
	}
	return v.Pass(round4(worstOK), minOK, reason)
}

func round4(f float64) float64 { return float64(int64(f*10000+0.5)) / 10000 }

// phases are a service's baseline before its first fault and its tail
// after recovery: the calls of each and the offsets they span.
type phases struct {
	before, after []harness.CallRecord
	bFrom, bTo    time.Duration
	aFrom, aTo    time.Duration
}

func (p phases) bSpan() time.Duration { return p.bTo - p.bFrom }
func (p phases) aSpan() time.Duration { return p.aTo - p.aFrom }

// recoveryPhases returns, for service, the baseline before its first fault
// (skipping the first fifth, the client's warm-up) and the tail after its
// last fault cleared plus the recovery time; why says what is missing.
func recoveryPhases(h *harness.History, service string, minSpan time.Duration, minCalls int) (p phases, why string) {
	ws := harness.FaultWindows(h, service)
	if len(ws) == 0 {
		return phases{}, "no fault window"
	}
	last := ws[len(ws)-1]
	if !last.Closed {
		return phases{}, "the fault lasted to the end of the run"
	}
	p.bTo = ws[0].Start
	p.bFrom = p.bTo / 5
	p.before = serviceCalls(h, service, p.bFrom, p.bTo)
	if p.bSpan() < minSpan || len(p.before) < minCalls {
		return phases{}, fmt.Sprintf("no baseline: %s with %d calls before the fault, need %s and %d", harness.FormatDuration(p.bSpan()), len(p.before), harness.FormatDuration(minSpan), minCalls)
	}
	p.aFrom = last.End + contractFor(h, service).RecoveryTime
	// Calls are started until the workload's duration; the tail ends there
	// (or at the end of the last call when the duration is not recorded).
	p.aTo = h.End()
	if d := h.Workload.Duration; d > 0 && d < p.aTo {
		p.aTo = d
	}
	p.after = serviceCalls(h, service, p.aFrom, p.aTo)
	if p.aSpan() < minSpan || len(p.after) < minCalls {
		return phases{}, fmt.Sprintf("the run ended too soon after the fault cleared at %s plus the recovery time: %s with %d calls, need %s and %d",
			harness.FormatDuration(last.End), harness.FormatDuration(max(p.aSpan(), 0)), len(p.after), harness.FormatDuration(minSpan), minCalls)
	}
	return p, ""
}

// RecoveryThroughput fails when, after a fault cleared and the
// declared recovery time passed, the service's successful calls per second
// stay below MinRatio (default 0.7) of the baseline before the fault. Not
// applicable without a baseline (MinSpan, default 500ms, and MinCalls,
// default 20) or a tail of the same size after recovery.
type RecoveryThroughput struct {
	Service  string        `json:"service,omitempty"` // "" = every service with a fault window
	MinRatio float64       `json:"min_ratio,omitempty"`
	MinSpan  time.Duration `json:"min_span,omitempty"`
	MinCalls int           `json:"min_calls,omitempty"`
}

func (RecoveryThroughput) ID() string { return IDRecoveryThroughput }

func (c RecoveryThroughput) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "x baseline")
	ratio := cmp.Or(c.MinRatio, 0.7)
	span := cmp.Or(c.MinSpan, recoveryMinSpan)
	minCalls := cmp.Or(c.MinCalls, defaultMinCalls)
	var (
		whys      []string
		worst     = -1.0
		wSvc      string
		wPre, wPo float64
		wLoad     load
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		p, why := recoveryPhases(h, svc, span, minCalls)
		if why != "" {
			whys = append(whys, svc+": "+why)
			continue
		}
		pre, post := okRate(p.before, p.bSpan()), okRate(p.after, p.aSpan())
		if pre == 0 {
			whys = append(whys, svc+": no successful call in the baseline")
			continue
		}
		r := post / pre
		load := machineLoad(h, p)
		if load.factor < 1 {
			r /= load.factor
		}
		if worst < 0 || r < worst {
			worst, wSvc, wPre, wPo, wLoad = r, svc, pre, post, load
		}
	}
	if worst < 0 {
		return v.NotApplicable(fmt.Sprintf("%v", whys))
	}
	if worst < ratio {
		return v.Fail(round2(worst), ratio, fmt.Sprintf("%s: %.1f successful calls/s after the fault cleared against %.1f before%s: the client did not recover; replace dead pooled connections and close the breaker once the service answers",
			wSvc, wPo, wPre, wLoad.note()))
	}
	return v.Pass(round2(worst), ratio, fmt.Sprintf("%s: %.1f successful calls/s after the fault cleared, %.1f before%s", wSvc, wPo, wPre, wLoad.note()))
}

// load is what this process used of the machine's CPU in a baseline and
// what other processes used in it and in a tail after recovery; factor is
// the share of the CPU the baseline used that was left to the run in the
// tail (at most 1; 1 when unmeasured).
type load struct {
	selfBefore    float64
	before, after float64
	factor        float64
}

// machineLoad measures p's two phases (History.CPUShares). A run whose
// calls are CPU-bound (the fake services answer at once) makes fewer calls
// per second when another process takes the CPU it needs; the throughput
// check divides its ratio by what was left (factor: the CPU other
// processes left free in the tail, over what the run used in the
// baseline) so that a busy machine is not taken for a client that did not
// recover. Only a machine too busy after the fault to give the run the CPU
// it used before adjusts the ratio, and only up: a client that slowed down
// by itself does not make other processes use more CPU.
func machineLoad(h *harness.History, p phases) load {
	l := load{factor: 1}
	sb, ob, okB := h.CPUShares(p.bFrom, p.bTo)
	_, oa, okA := h.CPUShares(p.aFrom, p.aTo)
	if !okB || !okA || sb <= 0 {
		return l
	}
	l.selfBefore, l.before, l.after = sb, ob, oa
	const floor = 0.05 // a run always gets some CPU; keep the factor finite
	l.factor = min(1, max(1-oa, floor)/sb)
	return l
}

// note says the adjustment, or nothing when there was none.
func (l load) note() string {
	if l.factor >= 1 {
		return ""
	}
	return fmt.Sprintf(" (other processes took %.0f%% of the machine's CPU after, %.0f%% before, when the run used %.0f%%: the ratio is divided by the %.2f of it left)",
		100*l.after, 100*l.before, 100*l.selfBefore, l.factor)
}

// RecoveryLatency fails when, after a fault cleared and the declared
// recovery time passed, the p50 latency of the service's successful calls
// stays above Factor x the baseline p50 + Slack (defaults 2 and 20ms).
type RecoveryLatency struct {
	Service  string        `json:"service,omitempty"`
	Factor   float64       `json:"factor,omitempty"`
	Slack    time.Duration `json:"slack,omitempty"`
	MinSpan  time.Duration `json:"min_span,omitempty"`
	MinCalls int           `json:"min_calls,omitempty"`
}

func (RecoveryLatency) ID() string { return IDRecoveryLatency }

func (c RecoveryLatency) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	factor := cmp.Or(c.Factor, 2)
	slack := cmp.Or(c.Slack, 20*time.Millisecond)
	span := cmp.Or(c.MinSpan, recoveryMinSpan)
	minCalls := cmp.Or(c.MinCalls, defaultMinCalls)
	var (
		whys          []string
		worstScore    = -1.0
		wSvc          string
		wPre, wPost   time.Duration
		wBound        time.Duration
		wOKAfter, wNA int
	)
	ok := func(cl harness.CallRecord) bool { return cl.OK() }
	for _, svc := range servicesOrAll(h, c.Service) {
		p, why := recoveryPhases(h, svc, span, minCalls)
		before, after := p.before, p.after
		if why != "" {
			whys = append(whys, svc+": "+why)
			continue
		}
		lb, la := latencies(before, ok), latencies(after, ok)
		if len(lb) == 0 || len(la) == 0 {
			whys = append(whys, svc+": no successful calls before or after the fault")
			continue
		}
		pre, post := percentile(lb, 0.5), percentile(la, 0.5)
		bound := time.Duration(factor*float64(pre)) + slack
		if s := float64(post) / float64(bound); s > worstScore {
			worstScore, wSvc, wPre, wPost, wBound, wOKAfter, wNA = s, svc, pre, post, bound, len(la), len(after)
		}
	}
	if worstScore < 0 {
		return v.NotApplicable(fmt.Sprintf("%v", whys))
	}
	if wPost > wBound {
		return v.Fail(ms(wPost), ms(wBound), fmt.Sprintf("%s: p50 latency %s after the fault cleared against %s before (%d of %d calls ok): the client did not recover; drop connections that went bad during the fault and reconnect",
			wSvc, harness.FormatDuration(wPost), harness.FormatDuration(wPre), wOKAfter, wNA))
	}
	return v.Pass(ms(wPost), ms(wBound), fmt.Sprintf("%s: p50 latency %s after the fault cleared, %s before", wSvc, harness.FormatDuration(wPost), harness.FormatDuration(wPre)))
}
