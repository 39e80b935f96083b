package check

import (
	"cmp"
	"fmt"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// RequestBound fails when a call outlived the declared request timeout
// by more than a margin (MarginFrac x timeout + MarginMin): a blackhole, a
// slow body or a connect that never completes must all end within the
// timeout, retries and body read included. Hung calls count with the time
// the watchdog gave up. Measured is the longest call, against its service's
// bound.
type RequestBound struct {
	// Timeout overrides the contract's RequestTimeout (0: from the profile).
	Timeout    time.Duration `json:"timeout,omitempty"`
	MarginFrac float64       `json:"margin_frac,omitempty"` // default 0.25
	MarginMin  time.Duration `json:"margin_min,omitempty"`  // default 500ms
}

func (RequestBound) ID() string { return IDTimeoutRequestBound }

func (c RequestBound) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	frac := cmp.Or(c.MarginFrac, 0.25)
	slack := cmp.Or(c.MarginMin, 500*time.Millisecond)
	var (
		worst      *harness.CallRecord
		worstBound time.Duration
		over       int
		n          int
		undeclared []string
	)
	bounds := map[harness.ServiceID]time.Duration{}
	for i := range h.Calls {
		cl := &h.Calls[i]
		if cl.Class == harness.ClassCanceled {
			continue
		}
		bound, ok := bounds[cl.Service]
		if !ok {
			t := cmp.Or(c.Timeout, contractFor(h, cl.Service.String()).RequestTimeout)
			bound = -1
			if t > 0 {
				bound = t + time.Duration(frac*float64(t)) + slack
			} else {
				undeclared = append(undeclared, cl.Service.String())
			}
			bounds[cl.Service] = bound
		}
		if bound < 0 {
			continue // no timeout declared for this service: no.hang judges it
		}
		n++
		if cl.Latency() > bound {
			over++
		}
		if worst == nil || float64(cl.Latency())/float64(bound) > float64(worst.Latency())/float64(worstBound) {
			worst, worstBound = cl, bound
		}
	}
	if worst == nil && len(undeclared) > 0 {
		return v.NotApplicable(fmt.Sprintf("the client declares no request timeout for %v: declare request_timeout (Contract.RequestTimeout) to have its calls held to it; timeout.no_hang still judges them", undeclared))
	}
	if worst == nil {
		return v.NotApplicable("no calls were made")
	}
	if over == 0 {
		return v.Pass(ms(worst.Latency()), ms(worstBound), fmt.Sprintf("all %d calls ended within their request timeout + margin; longest %s took %s",
			n, callName(h, *worst), harness.FormatDuration(worst.Latency())))
	}
	what := "took"
	if worst.Class == harness.ClassHang {
		what = "hung for at least"
	}
	return v.Fail(ms(worst.Latency()), ms(worstBound), fmt.Sprintf("%d of %d calls outlived the request timeout + margin (%s); worst %s %s %s: put a deadline on the whole call (context or http.Client.Timeout covering connect, retries and the body read)",
		over, n, harness.FormatDuration(worstBound), callName(h, *worst), what, harness.FormatDuration(worst.Latency())))
}
