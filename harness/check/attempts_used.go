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
// Judged are the calls a client may send again (a GET, a charge with an
// Idempotency-Key) that it handed back on a retryable answer (a 5xx,
// or the scenario's Status): the server's last attempt of the call was
// answered so and the client did not try again. Such a call could have been
// retried when the caller had made fewer than MaxAttempts attempts (the
// transport's replays not counted), the wait before the next attempt (the
// answer's Retry-After, else the declared backoff's least delay) was one
// the client honours (Contract.MaxRetryAfter, default the request timeout)
// and fitted before the call's deadline with a margin. Calls the client
// ended refusing another attempt itself (breaker open, pool full) are left
// out. At most MaxShare of the judged calls may have been retriable. A
// client that declares a retry budget (Contract.RetryBudget) may stop
// early when its budget says so, in a burst of failures most of the time;
// it is then held to retrying at least minBudgetGrant of the retriable
// answers after each attempt number that had 20 of them: a budget
// denies some, an attempt count off by one or a status never retried
// denies them all.
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

// minBudgetGrant is the least share of retriable answers a budgeted client
// must retry after each attempt number that had budgetOpportunities of
// them: a 10% budget in a burst of 30% failures grants about a third, and
// fewer while the burst lasts; a budget that is not the reason grants none.
const (
	minBudgetGrant      = 0.1
	budgetOpportunities = 20
)

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
		svc           string
		judged, early int
		share         float64
		firstEarly    string
		attempts      int
		fail          bool
		reason        string
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
		// retriable: after answer a, the caller's attempt n, another was
		// allowed and fitted before the call's deadline.
		retriable := func(call harness.CallRecord, a serverAttempt, n int) bool {
			if n >= ct.MaxAttempts || !c.matches(a.Status) || a.Finished < 0 {
				return false
			}
			return ct.RequestTimeout <= 0 || a.Finished-time.Duration(call.Start)+waitBefore(ct, n, c.RetryAfter)+margin < ct.RequestTimeout
		}
		groups := bySeq(as)
		r := result{svc: svc}
		// Per attempt number n: answers after which another attempt was
		// retriable, and of those the ones the client did retry.
		opps, taken := make([]int, ct.MaxAttempts), make([]int, ct.MaxAttempts)
		for _, call := range serviceCalls(h, svc, 0, math.MaxInt64) {
			g := groups[call.Seq]
			if len(g) == 0 || call.Class == harness.ClassCanceled || !mayResend(h, call) {
				continue
			}
			mine := callerAttempts(g)
			refused := call.Class == harness.ClassCircuitOpen || call.Class == harness.ClassPoolExhausted
			for i, a := range mine {
				last := i == len(mine)-1
				if last && refused || !retriable(call, a, i+1) {
					continue
				}
				opps[i+1]++
				if !last {
					taken[i+1]++
				}
			}
			lastA := mine[len(mine)-1]
			if !c.matches(lastA.Status) || lastA.Finished < 0 || refused {
				continue
			}
			r.judged++
			if retriable(call, lastA, len(mine)) {
				r.early++
				if r.firstEarly == "" {
					r.firstEarly, r.attempts = lastA.RequestID, len(mine)
				}
			}
		}
		if r.judged < minCalls {
			short = append(short, fmt.Sprintf("%s: %d calls handed back on %s, %d needed", svc, r.judged, what, minCalls))
			continue
		}
		r.share = round2(float64(r.early) / float64(r.judged))
		r.reason = fmt.Sprintf("%s: %d of %d calls handed back on %s had attempts (max %d) and time left for another", svc, r.early, r.judged, what, ct.MaxAttempts)
		switch {
		case r.share <= maxShare:
		case ct.RetryBudget > 0:
			// A budget may deny any retry, in bursts most of them; a working
			// one still grants a share of the retries at every attempt.
			worstN, worstRate := 0, 1.0
			for n := 1; n < ct.MaxAttempts; n++ {
				if opps[n] >= budgetOpportunities {
					if rate := float64(taken[n]) / float64(opps[n]); rate < worstRate {
						worstN, worstRate = n, rate
					}
				}
			}
			if worstN == 0 || worstRate >= minBudgetGrant {
				r.reason += fmt.Sprintf(", within its declared retry budget (%.2f of calls): at every attempt with %d or more retriable answers it retried at least %.0f%% of them", ct.RetryBudget, budgetOpportunities, 100*minBudgetGrant)
				break
			}
			r.fail = true
			r.reason += fmt.Sprintf("; after attempt %d it retried only %d of %d retriable answers, fewer than a retry budget of %.2f explains (%.0f%%)", worstN, taken[worstN], opps[worstN], ct.RetryBudget, 100*minBudgetGrant)
		default:
			r.fail = true
			r.reason += fmt.Sprintf(", e.g. request id %s after %d attempt(s); no retry budget declared (Contract.RetryBudget)", r.firstEarly, r.attempts)
		}
		if worst == nil || (r.fail && !worst.fail) || (r.fail == worst.fail && r.share > worst.share) {
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
	if worst.fail {
		return v.Fail(worst.share, maxShare, worst.reason+": retry a retryable answer while attempts and time are left (declare what stops the client earlier)")
	}
	return v.Pass(worst.share, maxShare, worst.reason)
}

// mayResend reports a call a client may send again: a GET, or a charge
// carrying an Idempotency-Key. A POST without one (a notification, an
// unkeyed charge) may have been processed whatever the answer said, so a
// client that never resends it is careful, not giving up early.
func mayResend(h *harness.History, call harness.CallRecord) bool {
	switch call.Op {
	case harness.OpGetItem:
		return true
	case harness.OpCreateCharge:
		return h.Workload.KeyedCharges
	}
	return false
}

// callerAttempts are the attempts of one call (g, in arrival order) the
// caller made: an attempt the transport replayed is stood for by its
// replay, whose answer is the one the caller got.
func callerAttempts(g []serverAttempt) []serverAttempt {
	replay := transportReplays(g)
	out := make([]serverAttempt, 0, len(g))
	for i, a := range g {
		if i+1 < len(g) && replay[i+1] {
			continue
		}
		out = append(out, a)
	}
	return out
}
