package check

import (
	"cmp"
	"fmt"
	"math"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// AttemptsUsed fails a client that gives up with attempts and time left:
// it stops one attempt short of its declared MaxAttempts, or hands back
// every 429 although its Retry-After is short enough to wait. It is the
// other side of retry.attempts_bounded.
//
// Judged are the calls a client handed back on a retryable answer (a 5xx,
// or the scenario's Status): the server's last attempt of the call was
// answered so and the client did not try again. Such a call could have been
// retried when the caller had made fewer than MaxAttempts attempts (the
// transport's replays not counted), the wait before the next attempt (the
// answer's Retry-After, else the declared backoff's least delay) was one
// the client honours (Contract.MaxRetryAfter, default the request timeout)
// and fitted before the call's deadline with a margin. Calls the client
// ended refusing another attempt itself (breaker open, pool full) are left
// out. At most MaxShare of the judged calls may have been retriable, unless
// the client declares a retry budget (Contract.RetryBudget) and spent at
// least half of it: retries >= budget/2 x calls.
type AttemptsUsed struct {
	// Service restricts the check to one service ("" = every service).
	Service string `json:"service,omitempty"`
	// Status is the retryable answer judged (0: any 5xx).
	Status int `json:"status,omitempty"`
	// RetryAfter is the Retry-After the scenario's Status answers carry
	// (0: none; the client's own backoff sets the wait).
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// MaxShare bounds the judged calls handed back with attempts and time
	// left (default 0.1).
	MaxShare float64 `json:"max_share,omitempty"`
	// MinCalls is the fewest judged calls per service (default 5).
	MinCalls int `json:"min_calls,omitempty"`
}

func (AttemptsUsed) ID() string { return IDRetryAttemptsUsed }

func (c AttemptsUsed) matches(status int) bool {
	if c.Status != 0 {
		return status == c.Status
	}
	return status >= 500
}

// waitBefore is the least the caller must wait before retry n of a call
// answered with Retry-After ra (0: none): ra, else the declared backoff's
// floor after its jitter.
func waitBefore(ct harness.Contract, n int, ra time.Duration) time.Duration {
	if ra > 0 {
		return ra
	}
	if ct.BackoffBase <= 0 {
		return 0
	}
	return time.Duration(float64(backoffCeiling(ct, n)) * (1 - min(max(ct.BackoffJitter, 0), 1)))
}

func (c AttemptsUsed) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "share")
	maxShare := cmp.Or(c.MaxShare, 0.1)
	minCalls := cmp.Or(c.MinCalls, 5)
	what := "a 5xx"
	if c.Status != 0 {
		what = fmt.Sprintf("a %d", c.Status)
	}
	type result struct {
		svc                  string
		judged, early        int
		retries, calls       int
		budget, share        float64
		firstEarly           string
		attempts, maxAttempt int
	}
	var (
		worst    *result
		truth    bool
		declared bool
		short    []string
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		ct := contractFor(h, svc)
		if ct.MaxAttempts < 2 {
			continue
		}
		declared = true
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		truth = true
		honoured := cmp.Or(ct.MaxRetryAfter, ct.RequestTimeout)
		if c.RetryAfter > 0 && honoured > 0 && c.RetryAfter > honoured {
			short = append(short, fmt.Sprintf("%s honours no Retry-After of %s", svc, harness.FormatDuration(c.RetryAfter)))
			continue
		}
		margin := 50*time.Millisecond + ct.RequestTimeout/10
		groups := bySeq(as)
		r := result{svc: svc, budget: ct.RetryBudget, maxAttempt: ct.MaxAttempts}
		for _, call := range serviceCalls(h, svc, 0, math.MaxInt64) {
			g := groups[call.Seq]
			if len(g) == 0 {
				continue
			}
			r.calls++
			caller := len(retryGaps(g)) + 1 // attempts the caller made
			r.retries += caller - 1
			last := g[len(g)-1]
			if !c.matches(last.Status) || last.Finished < 0 || call.Class == harness.ClassCircuitOpen || call.Class == harness.ClassPoolExhausted || call.Class == harness.ClassCanceled {
				continue
			}
			r.judged++
			if caller >= ct.MaxAttempts {
				continue
			}
			if ct.RequestTimeout > 0 && last.Finished-time.Duration(call.Start)+waitBefore(ct, caller, c.RetryAfter)+margin >= ct.RequestTimeout {
				continue // its deadline was too near for another attempt
			}
			r.early++
			if r.firstEarly == "" {
				r.firstEarly, r.attempts = last.RequestID, caller
			}
		}
		if r.judged < minCalls {
			short = append(short, fmt.Sprintf("%s: %d calls handed back on %s, %d needed", svc, r.judged, what, minCalls))
			continue
		}
		r.share = round2(float64(r.early) / float64(r.judged))
		if worst == nil || r.share > worst.share {
			worst = &r
		}
	}
	switch {
	case !declared:
		return v.NotApplicable("the client declares no retries: declare max_attempts >= 2 (Contract.MaxAttempts) to have it held to using them")
	case !truth:
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	case worst == nil:
		return v.NotApplicable(fmt.Sprintf("no call shows whether the client uses its attempts: %v", short))
	}
	reason := fmt.Sprintf("%s: %d of %d calls handed back on %s had attempts (max %d) and time left for another", worst.svc, worst.early, worst.judged, what, worst.maxAttempt)
	if worst.share <= maxShare {
		return v.Pass(worst.share, maxShare, reason)
	}
	spent := float64(worst.retries) / float64(max(worst.calls, 1))
	if worst.budget > 0 && spent >= worst.budget/2 {
		return v.Pass(worst.share, maxShare, fmt.Sprintf("%s; its declared retry budget (%.2f of calls) was spent: %d retries for %d calls", reason, worst.budget, worst.retries, worst.calls))
	}
	budget := "no retry budget declared (Contract.RetryBudget)"
	if worst.budget > 0 {
		budget = fmt.Sprintf("its retry budget (%.2f of calls) unspent: %d retries for %d calls", worst.budget, worst.retries, worst.calls)
	}
	return v.Fail(worst.share, maxShare, fmt.Sprintf("%s, e.g. request id %s after %d attempt(s); %s: retry a retryable answer while attempts and time are left (declare what stops the client earlier)",
		reason, worst.firstEarly, worst.attempts, budget))
}
