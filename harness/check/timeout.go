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
// timeout, retries and body read included. The timeout is the call's: the
// contract's RequestTimeout, or for a client that declares its timeout per
// attempt MaxAttempts x AttemptTimeout, whose backoffs between attempts the
// margin covers. Hung calls count with the time the watchdog gave up.
// Measured is the longest call, against its service's bound.
type RequestBound struct {
	// Timeout overrides the contract's per-call RequestTimeout (0: from the
	// profile, derived from AttemptTimeout when only that is declared).
	Timeout    time.Duration `json:"timeout,omitempty"`
	MarginFrac float64       `json:"margin_frac,omitempty"` // default 0.25
	MarginMin  time.Duration `json:"margin_min,omitempty"`  // default 500ms
}

func (RequestBound) ID() string { return IDTimeoutRequestBound }

func (c RequestBound) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	frac := cmp.Or(c.MarginFrac, 0.25)
	slack := cmp.Or(c.MarginMin, 500*time.Millisecond)
	// callBound is a service's bound and, for the reason, the timeout it
	// grew from and how the contract derived that ("" when declared).
	type callBound struct {
		bound, timeout time.Duration
		from           string
	}
	var (
		worst      *harness.CallRecord
		worstBound callBound
		over       int
		n          int
		undeclared []string
	)
	bounds := map[harness.ServiceID]callBound{}
	for i := range h.Calls {
		cl := &h.Calls[i]
		if cl.Class == harness.ClassCanceled {
			continue
		}
		b, ok := bounds[cl.Service]
		if !ok {
			b.timeout = c.Timeout
			if b.timeout == 0 {
				ct := contractFor(h, cl.Service.String())
				b.timeout, b.from = ct.RequestTimeout, perAttempt(ct, ct.RequestTimeout, ct.AttemptTimeout)
			}
			b.bound = -1
			if b.timeout > 0 {
				b.bound = b.timeout + time.Duration(frac*float64(b.timeout)) + slack
			} else {
				undeclared = append(undeclared, cl.Service.String())
			}
			bounds[cl.Service] = b
		}
		if b.bound < 0 {
			continue // no timeout declared for this service: timeout.no_hang judges it
		}
		n++
		if cl.Latency() > b.bound {
			over++
		}
		if worst == nil || float64(cl.Latency())/float64(b.bound) > float64(worst.Latency())/float64(worstBound.bound) {
			worst, worstBound = cl, b
		}
	}
	if worst == nil && len(undeclared) > 0 {
		return v.NotApplicable(fmt.Sprintf("the client declares no request timeout for %v: declare request_timeout (Contract.RequestTimeout) to have its calls held to it; timeout.no_hang still judges them", undeclared))
	}
	if worst == nil {
		return v.NotApplicable("no calls were made")
	}
	if over == 0 {
		return v.Pass(ms(worst.Latency()), ms(worstBound.bound), fmt.Sprintf("all %d calls ended within their request timeout + margin; longest %s took %s, within %s%s + margin",
			n, callName(h, *worst), harness.FormatDuration(worst.Latency()), harness.FormatDuration(worstBound.timeout), worstBound.from))
	}
	what := "took"
	if worst.Class == harness.ClassHang {
		what = "hung for at least"
	}
	return v.Fail(ms(worst.Latency()), ms(worstBound.bound), fmt.Sprintf("%d of %d calls outlived the request timeout + margin (%s%s + margin = %s); worst %s %s %s: put a deadline on the whole call (context or http.Client.Timeout covering connect, retries and the body read)",
		over, n, harness.FormatDuration(worstBound.timeout), worstBound.from, harness.FormatDuration(worstBound.bound), callName(h, *worst), what, harness.FormatDuration(worst.Latency())))
}
