package check

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// Goodput fails when calls that the client's own contract could have
// served fail: with no fault active, or under a fault its timeouts allow
// (fragmented or slowed bodies that still arrive in time), nearly every
// call must succeed; under a fault that fails a share p of attempts
// (FaultFailure), the declared retries make a share 1 - p^n of calls
// succeed (n = Contract.MaxAttempts, one when undeclared), or, for a
// client that declares a retry budget of r retries per call
// (Contract.RetryBudget), at most (1-p)(1+r) when that is less: the client
// must reach it, less Margin. A client that cancels its own body reads
// (a deadline shorter than the contract's, a context cancelled too early),
// retries less than it declares, or whose breaker turns away calls a
// healthy service would answer, fails it. Calls outside the service's fault
// windows are held to the fault-free share, those inside to the fault's;
// each group is judged once it has MinCalls calls. Where the fault draws
// which attempts fail, the bound also gives way by three standard
// deviations of the share over the group's calls, so that a correct client
// with few calls is not failed by the draw. Calls the caller gave
// up on (see harness.History.CallerLimit) and calls of a cancelled run are
// no client's failure and are left out. Measured is the worst group's
// success share, against its bound.
type Goodput struct {
	Service string `json:"service,omitempty"` // "" = every service of the run
	// FaultFailure is the share of attempts the scenario's fault fails
	// while it is active (0: the fault fails none, e.g. fragmented bodies).
	FaultFailure float64 `json:"fault_failure,omitempty"`
	// Margin is taken off the share the contract makes possible (default
	// 0.04: a few calls lost to a loaded machine).
	Margin   float64 `json:"margin,omitempty"`
	MinCalls int     `json:"min_calls,omitempty"` // default 20
}

func (Goodput) ID() string { return IDGoodput }

// goodputGroup is the calls of one service held to one bound.
type goodputGroup struct {
	service, where string
	calls          []harness.CallRecord
	need           float64 // the share the contract makes possible
	attempts       int
	p              float64
	budget         float64 // the retry budget that bounds need; 0 when the attempts do
}

func (c Goodput) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "success share")
	margin := cmp.Or(c.Margin, 0.04)
	minCalls := cmp.Or(c.MinCalls, defaultMinCalls)
	var groups []goodputGroup
	for _, svc := range servicesOrAll(h, c.Service) {
		ct := contractFor(h, svc)
		n := max(1, ct.MaxAttempts)
		ws := harness.FaultWindows(h, svc)
		calm := goodputGroup{service: svc, where: "with no fault", need: 1, attempts: n}
		hit := goodputGroup{service: svc, where: "under the fault", p: c.FaultFailure, need: 1 - math.Pow(c.FaultFailure, float64(n)), attempts: n}
		if ct.RetryBudget > 0 && n > 1 && (1-hit.p)*(1+ct.RetryBudget) < hit.need {
			hit.need, hit.budget = (1-hit.p)*(1+ct.RetryBudget), ct.RetryBudget
		}
		for _, cl := range serviceCalls(h, svc, 0, h.End()+1) {
			if inAny(ws, time.Duration(cl.Start)) || inAny(ws, time.Duration(cl.End)) {
				hit.calls = append(hit.calls, cl)
			} else {
				calm.calls = append(calm.calls, cl)
			}
		}
		for _, g := range []goodputGroup{calm, hit} {
			if len(g.calls) >= minCalls {
				groups = append(groups, g)
			}
		}
	}
	if len(groups) == 0 {
		return v.NotApplicable(fmt.Sprintf("fewer than %d calls the caller waited for, in and out of faults, on every service", minCalls))
	}
	var (
		worst      *goodputGroup
		worstShare float64
		failed     []string
		summary    []string
	)
	for i := range groups {
		g := &groups[i]
		share := successRate(g.calls)
		bound := g.bound(margin)
		line := fmt.Sprintf("[%s] %s: %.1f%% of %d calls succeeded, bound %.1f%%", g.service, g.where, 100*share, len(g.calls), 100*bound)
		summary = append(summary, line)
		if share < bound {
			failed = append(failed, line+" ("+g.explain(h)+")")
		}
		if worst == nil || share-bound < worstShare-worst.bound(margin) {
			worst, worstShare = g, share
		}
	}
	if len(failed) == 0 {
		return v.Pass(worstShare, worst.bound(margin), strings.Join(summary, "; "))
	}
	return v.Fail(worstShare, worst.bound(margin), strings.Join(failed, "; ")+
		": calls the contract's timeouts and retries could serve failed; look for a deadline shorter than the declared timeouts (one that also covers the body read), fewer retries than declared, or a breaker that turns away a healthy service's calls")
}

// bound is the share the group must reach: what the contract makes
// possible less margin and less three standard deviations of a share drawn
// over the group's calls (none when no call is drawn to fail).
func (g goodputGroup) bound(margin float64) float64 {
	return g.need - margin - 3*math.Sqrt(g.need*(1-g.need)/float64(len(g.calls)))
}

// explain says where a group's bound comes from and how its calls failed.
func (g goodputGroup) explain(h *harness.History) string {
	from := "no fault fails a call"
	if g.p > 0 {
		noun := "attempts"
		if g.attempts == 1 {
			noun = "attempt"
		}
		from = fmt.Sprintf("the fault fails %.0f%% of attempts; %d declared %s leave 1 - %.2f^%d = %.1f%%", 100*g.p, g.attempts, noun, g.p, g.attempts, 100*(1-math.Pow(g.p, float64(g.attempts))))
		if g.budget > 0 {
			from += fmt.Sprintf(", the declared retry budget (%.2f retries per call) (1 - %.2f) x (1 + %.2f) = %.1f%%", g.budget, g.p, g.budget, 100*g.need)
		}
	}
	classes := map[string]int{}
	var first *harness.CallRecord
	for i := range g.calls {
		cl := &g.calls[i]
		if cl.OK() {
			continue
		}
		k := cl.Class.String()
		if cl.Class == harness.ClassNone {
			k = fmt.Sprintf("status %d", cl.Status)
			if cl.Digest == harness.DigestMismatch {
				k = "body mismatch"
			}
		}
		classes[k]++
		if first == nil {
			first = cl
		}
	}
	kinds := slices.Sorted(maps.Keys(classes))
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d %s", classes[k], k)
	}
	out := from + "; failures: " + strings.Join(kinds, ", ")
	if first != nil {
		if text := h.ErrorText(*first); text != "" {
			out += fmt.Sprintf("; first %s: %s", callName(h, *first), text)
		}
	}
	return out
}
