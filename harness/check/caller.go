package check

import (
	"cmp"
	"fmt"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// CallerDeadline fails when the client kept a caller waiting after the
// caller gave up: every call whose context had a deadline, or was cancelled
// in flight (Workload.Caller, see harness.History.CallerLimit), must return
// within MarginFrac x its limit + MarginMin after its start + limit. A
// client that sleeps between retries without watching the context
// (time.Sleep), waits out a Retry-After its caller's deadline cannot
// afford, or runs its body read on a context of its own fails it. Measured
// is the worst call's latency, against its bound.
type CallerDeadline struct {
	MarginFrac float64       `json:"margin_frac,omitempty"` // default 0.5
	MarginMin  time.Duration `json:"margin_min,omitempty"`  // default 400ms
}

func (CallerDeadline) ID() string { return IDCallerDeadline }

func (c CallerDeadline) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	if h.Workload.Caller == (harness.CallerLimits{}) {
		return v.NotApplicable("the workload gives up on no call: set Workload.Caller (a share of calls with a deadline or cancelled in flight) to have the client held to its callers' deadlines")
	}
	frac := cmp.Or(c.MarginFrac, 0.5)
	slack := cmp.Or(c.MarginMin, 400*time.Millisecond)
	var (
		worst            *harness.CallRecord
		worstBound       time.Duration
		worstLimit       harness.CallerLimit
		over, n          int
		deadline, cancel int
	)
	for i := range h.Calls {
		cl := &h.Calls[i]
		lim := h.CallerLimit(cl.Seq)
		if lim.Kind == harness.CallerWaits {
			continue
		}
		n++
		if lim.Kind == harness.CallerDeadline {
			deadline++
		} else {
			cancel++
		}
		bound := lim.After + time.Duration(frac*float64(lim.After)) + slack
		if cl.Latency() > bound {
			over++
		}
		if worst == nil || float64(cl.Latency())/float64(bound) > float64(worst.Latency())/float64(worstBound) {
			worst, worstBound, worstLimit = cl, bound, lim
		}
	}
	if worst == nil {
		return v.NotApplicable("no call of the run was one its caller gave up on")
	}
	what := fmt.Sprintf("%s (caller %s after %s) took %s", callName(h, *worst), worstLimit.Kind, harness.FormatDuration(worstLimit.After), harness.FormatDuration(worst.Latency()))
	if t := h.ErrorText(*worst); t != "" {
		what += ": " + t
	}
	if over == 0 {
		return v.Pass(ms(worst.Latency()), ms(worstBound), fmt.Sprintf("all %d calls the caller gave up on (%d deadlines, %d cancellations) returned within their limit + margin; slowest %s, bound %s",
			n, deadline, cancel, what, harness.FormatDuration(worstBound)))
	}
	return v.Fail(ms(worst.Latency()), ms(worstBound), fmt.Sprintf("%d of %d calls the caller gave up on (%d deadlines, %d cancellations) returned later than their limit + margin; worst %s, bound %s: watch the call's context wherever the client waits (backoff sleeps, Retry-After, pool waits) and return when it is done",
		over, n, deadline, cancel, what, harness.FormatDuration(worstBound)))
}
