package check

import (
	"cmp"
	"fmt"
	"math"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// breakerMinCalls is the fewest calls the breaker checks judge a fault
// window on: after the trip for BreakerOpens, after the fault for
// BreakerRecovers.
const breakerMinCalls = 10

// breakerTarget is one fault window of a service whose client declares a breaker.
type breakerTarget struct {
	svc      string
	contract harness.Contract
	window   harness.Window
	region   harness.Window // the part of the window after the breaker had time to trip
}

// breakerTargets lists the fault windows of the judged services whose
// contract declares a breaker, with the part after tripAfter (default half
// the open delay, at most half the window). why says what was missing when
// there are none.
func breakerTargets(h *harness.History, service string, tripAfter time.Duration) (out []breakerTarget, why string) {
	noBreaker, noWindow := 0, 0
	for _, svc := range servicesOrAll(h, service) {
		ct := contractFor(h, svc)
		if ct.BreakerOpenDelay <= 0 {
			noBreaker++
			continue
		}
		ws := harness.FaultWindows(h, svc)
		if len(ws) == 0 {
			noWindow++
			continue
		}
		for _, w := range ws {
			trip := min(cmp.Or(tripAfter, ct.BreakerOpenDelay/2), w.Duration()/2)
			r := w
			r.Start += trip
			out = append(out, breakerTarget{svc: svc, contract: ct, window: w, region: r})
		}
	}
	switch {
	case len(out) > 0:
		return out, ""
	case noBreaker > 0 && noWindow == 0:
		return nil, "the client declares no circuit breaker: declare breaker_open_delay (Contract.BreakerOpenDelay) to have its breaker judged"
	}
	return nil, "no fault window on a service whose client declares a breaker: nothing to trip it"
}

// attemptsIn counts server attempts arrived in w; as is in arrival order.
func attemptsIn(as []serverAttempt, w harness.Window) []time.Duration {
	var out []time.Duration
	for _, a := range as {
		if w.Contains(a.Arrived) {
			out = append(out, a.Arrived)
		}
	}
	return out
}

// BreakerOpens fails when, during an outage and after the breaker had
// time to trip (TripAfter, default half the declared open delay), attempts
// still reach the server at more than MaxAttemptRatio per call (default 0.3),
// or failed calls are slow: their p50 latency above FastFail (default
// max(50ms, RequestTimeout/10)). The attempt rate is only measured when the
// outage lets attempts reach the server (HTTP faults, or the server saw
// attempts in the window); an outage below the server (a disabled proxy, a
// blackhole) is judged on fast failure alone.
type BreakerOpens struct {
	Service         string        `json:"service,omitempty"` // "" = every service with a fault window
	TripAfter       time.Duration `json:"trip_after,omitempty"`
	MaxAttemptRatio float64       `json:"max_attempt_ratio,omitempty"`
	FastFail        time.Duration `json:"fast_fail,omitempty"`
	// MinCalls is the fewest calls after the trip needed to judge (default 10).
	MinCalls int `json:"min_calls,omitempty"`
}

func (BreakerOpens) ID() string { return IDBreakerOpens }

func (c BreakerOpens) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "attempts/call")
	targets, why := breakerTargets(h, c.Service, c.TripAfter)
	if len(targets) == 0 {
		return v.NotApplicable(why)
	}
	ratioBound := cmp.Or(c.MaxAttemptRatio, 0.3)
	minCalls := cmp.Or(c.MinCalls, breakerMinCalls)
	var (
		judged  int
		reasons []string
		ratioW  = -1.0
		ratioAt string
		// the slowest failure p50 relative to its bound, reported when no
		// attempt ratio could be judged
		slowP50, slowFast time.Duration
	)
	for _, t := range targets {
		calls := serviceCalls(h, t.svc, t.region.Start, t.region.End)
		if len(calls) < minCalls {
			continue
		}
		judged++
		fast := cmp.Or(c.FastFail, max(50*time.Millisecond, t.contract.RequestTimeout/10))
		failed := latencies(calls, func(cl harness.CallRecord) bool { return !cl.OK() })
		p50 := percentile(failed, 0.5)
		if as, ok := serverAttempts(h, t.svc); ok {
			n := len(attemptsIn(as, t.region))
			if t.window.HTTPFaults || n > 0 {
				r := float64(n) / float64(len(calls))
				if r > ratioBound {
					return v.Fail(round2(r), ratioBound, fmt.Sprintf("%s: %d attempts reached the server for %d calls during the outage (%s, judged from %s on): the breaker does not open; open it after consecutive failures and fail calls fast while open",
						t.svc, n, len(calls), t.window, harness.FormatDuration(t.region.Start)))
				}
				if r > ratioW {
					ratioW, ratioAt = r, fmt.Sprintf("%s: %d server attempts for %d calls", t.svc, n, len(calls))
				}
			}
		}
		if len(failed) > 0 && p50 > fast {
			v.Unit = "ms"
			return v.Fail(ms(p50), ms(fast), fmt.Sprintf("%s: failed calls during the outage (%s, judged from %s on) took %s at p50: they wait for the dead service instead of failing fast; open the breaker and reject calls at once while it is open",
				t.svc, t.window, harness.FormatDuration(t.region.Start), harness.FormatDuration(p50)))
		}
		reasons = append(reasons, fmt.Sprintf("%s: failed calls %s at p50", t.svc, harness.FormatDuration(p50)))
		if slowFast == 0 || float64(p50)/float64(fast) > float64(slowP50)/float64(slowFast) {
			slowP50, slowFast = p50, fast
		}
	}
	if judged == 0 {
		return v.NotApplicable(fmt.Sprintf("fewer than %d calls after the breaker could trip in any outage", minCalls))
	}
	if ratioW < 0 {
		v.Unit = "ms"
		return v.Pass(ms(slowP50), ms(slowFast), fmt.Sprintf("the outage kept attempts from the server, so only fast failure is judged: %v", reasons))
	}
	return v.Pass(round2(ratioW), ratioBound, fmt.Sprintf("attempts reaching the server collapsed during the outage (%s); %v", ratioAt, reasons))
}

// BreakerHalfOpen fails when, during an outage after the breaker
// tripped, more than HalfOpenProbes + Allowance attempts reached the server
// within any span of half the open delay. A breaker probes at most once per
// open delay and lets HalfOpenProbes attempts through; a half-open state
// that admits every call lets about the offered concurrency through at once.
// The allowance (default 1) covers a transport replay of a probe.
type BreakerHalfOpen struct {
	Service   string        `json:"service,omitempty"`
	TripAfter time.Duration `json:"trip_after,omitempty"`
	// Probes overrides the contract's HalfOpenProbes (0: from the profile).
	Probes    int `json:"probes,omitempty"`
	Allowance int `json:"allowance,omitempty"`
}

func (BreakerHalfOpen) ID() string { return IDBreakerHalfOpen }

func (c BreakerHalfOpen) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "attempts")
	targets, why := breakerTargets(h, c.Service, c.TripAfter)
	if len(targets) == 0 {
		return v.NotApplicable(why)
	}
	allow := cmp.Or(c.Allowance, 1)
	var (
		judged      int
		worst       = -1
		worstBound  int
		worstSvc    string
		worstAt     time.Duration
		worstSpan   time.Duration
		noTruthSeen bool
	)
	for _, t := range targets {
		as, ok := serverAttempts(h, t.svc)
		if !ok {
			noTruthSeen = true
			continue
		}
		arr := attemptsIn(as, t.region)
		if !t.window.HTTPFaults && len(arr) == 0 {
			continue
		}
		judged++
		span := max(t.contract.BreakerOpenDelay/2, time.Millisecond)
		bound := cmp.Or(c.Probes, t.contract.HalfOpenProbes) + allow
		// Two pointers over arrival times: the most attempts in any [t, t+span).
		best, at, j := 0, time.Duration(0), 0
		for i := range arr {
			for arr[i]-arr[j] >= span {
				j++
			}
			if n := i - j + 1; n > best {
				best, at = n, arr[j]
			}
		}
		if worst < 0 || best-bound > worst-worstBound {
			worst, worstBound, worstSvc, worstAt, worstSpan = best, bound, t.svc, at, span
		}
	}
	if judged == 0 {
		if noTruthSeen {
			return v.NotApplicable("no server-side truth: the attempts reaching the server could not be read")
		}
		return v.NotApplicable("the outage kept attempts from the server (no HTTP fault), so half-open probes are not visible")
	}
	if worst > worstBound {
		return v.Fail(float64(worst), float64(worstBound), fmt.Sprintf("%s: %d attempts reached the server within %s from %s during the outage: half-open lets every call through; admit at most HalfOpenProbes probes and reopen on a failed probe",
			worstSvc, worst, harness.FormatDuration(worstSpan), harness.FormatDuration(worstAt)))
	}
	return v.Pass(float64(worst), float64(worstBound), fmt.Sprintf("%s: at most %d attempts reached the server within any %s during the outage", worstSvc, worst, harness.FormatDuration(worstSpan)))
}

// BreakerRecovers fails when calls do not succeed again soon enough
// after the fault clears: the time from the end of the fault window to the
// first success of the first MinCalls consecutive calls (default 10) of
// which at least MinSuccess (default 90%) succeed must be <= RecoveryTime + the open
// delay. The open delay is added because a breaker that opened just before
// the fault cleared rightly waits it out before probing; a breaker that
// never half-opens never recovers.
type BreakerRecovers struct {
	Service string `json:"service,omitempty"`
	// RecoveryTime overrides the contract's (0: from the profile).
	RecoveryTime time.Duration `json:"recovery_time,omitempty"`
	MinCalls     int           `json:"min_calls,omitempty"`
	MinSuccess   float64       `json:"min_success,omitempty"`
}

func (BreakerRecovers) ID() string { return IDBreakerRecovers }

func (c BreakerRecovers) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	targets, why := breakerTargets(h, c.Service, 0)
	if len(targets) == 0 {
		return v.NotApplicable(why)
	}
	minCalls := cmp.Or(c.MinCalls, breakerMinCalls)
	minOK := cmp.Or(c.MinSuccess, 0.9)
	end := h.End()
	var (
		judged     int
		worst      time.Duration = -1
		worstB     time.Duration
		worstSvc   string
		never      bool
		worstWind  harness.Window
		worstScore float64
	)
	for i, t := range targets {
		if !t.window.Closed {
			continue
		}
		until := end + 1
		if i+1 < len(targets) && targets[i+1].svc == t.svc {
			until = targets[i+1].window.Start
		}
		calls := serviceCalls(h, t.svc, t.window.End, until)
		if len(calls) < minCalls {
			continue
		}
		judged++
		bound := cmp.Or(c.RecoveryTime, t.contract.RecoveryTime) + t.contract.BreakerOpenDelay
		need := int(minOK*float64(minCalls) + 0.999999)
		took, ok, found := time.Duration(0), 0, false
		for k := range calls {
			if calls[k].OK() {
				ok++
			}
			if k >= minCalls && calls[k-minCalls].OK() {
				ok--
			}
			if k >= minCalls-1 && ok >= need {
				// Recovered with the first success of that run of calls.
				j := k - minCalls + 1
				for !calls[j].OK() {
					j++
				}
				took, found = time.Duration(calls[j].Start)-t.window.End, true
				break
			}
		}
		if !found {
			took = time.Duration(calls[len(calls)-1].Start) - t.window.End
		}
		score := float64(took) / float64(bound)
		if !found {
			score = math.Inf(1)
		}
		if worst < 0 || score > worstScore {
			worst, worstB, worstSvc, never, worstWind, worstScore = took, bound, t.svc, !found, t.window, score
		}
	}
	if judged == 0 {
		return v.NotApplicable(fmt.Sprintf("no fault that cleared with at least %d calls after it: the run ended too soon after the fault", minCalls))
	}
	if never && worst < worstB {
		// The run ended before the bound passed: a recovery within the bound
		// was still possible, so "never" would be a guess.
		return v.NotApplicable(fmt.Sprintf("%s had not recovered when the run ended %s after the fault cleared, before its %s recovery bound: lengthen the scenario to judge it",
			worstSvc, harness.FormatDuration(worst), harness.FormatDuration(worstB)))
	}
	if never {
		return v.Fail(ms(worst), ms(worstB), fmt.Sprintf("%s never recovered after the fault cleared at %s: no %d consecutive calls with %.0f%% success in the %s left; let the breaker half-open after its open delay and close on successful probes",
			worstSvc, harness.FormatDuration(worstWind.End), minCalls, minOK*100, harness.FormatDuration(worst)))
	}
	if worst > worstB {
		return v.Fail(ms(worst), ms(worstB), fmt.Sprintf("%s took %s after the fault cleared at %s to succeed again, longer than the recovery time + open delay: probe sooner after the open delay and close the breaker on successful probes",
			worstSvc, harness.FormatDuration(worst), harness.FormatDuration(worstWind.End)))
	}
	return v.Pass(ms(worst), ms(worstB), fmt.Sprintf("%s succeeded again %s after the fault cleared at %s", worstSvc, harness.FormatDuration(worst), harness.FormatDuration(worstWind.End)))
}
