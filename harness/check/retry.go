package check

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// RetryAttempts fails when the server saw more of the caller's attempts of
// one logical call (one X-Request-ID) than the contract's MaxAttempts.
//
// Transport replays are told apart and reported, not counted: an HTTP/1.1
// transport (Go's, urllib3's) sends a request again on its own when a
// reused keep-alive connection dies before the answer, and the server may
// already have read the first copy. Seen from the server that is an
// attempt left unanswered, followed at once (within replayGap) by the same
// request id on another connection (see transportReplays). A retry the client chose
// waits its backoff or follows an answer, so it is never taken for a
// replay; a retry storm (10 attempts against a declared 3) fails either way.
type RetryAttempts struct {
	// MaxAttempts overrides the contract's MaxAttempts (0: from the profile).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Strict counts transport replays as attempts too.
	Strict bool `json:"strict,omitempty"`
}

func (RetryAttempts) ID() string { return IDRetryAttempts }

func (c RetryAttempts) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "attempts")
	type result struct {
		svc, id, method string
		attempts, bound int
		replays         int
	}
	var (
		worst   *result
		over    int
		ids     int
		replays int
		judged  bool
		svcSeen []string
	)
	for _, svc := range h.Services {
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		judged = true
		svcSeen = append(svcSeen, svc)
		declared := cmp.Or(c.MaxAttempts, contractFor(h, svc).MaxAttempts, harness.UniversalMaxAttempts)
		groups := bySeq(as)
		for _, seq := range sortedSeqs(groups) {
			g := groups[seq]
			ids++
			n := len(g)
			for _, a := range g {
				n = max(n, a.Attempt)
			}
			rp := 0
			for _, isReplay := range transportReplays(g) {
				if isReplay {
					rp++
				}
			}
			replays += rp
			if !c.Strict {
				n -= rp
			}
			r := result{svc: svc, id: g[0].RequestID, method: g[0].Method, attempts: n, bound: declared, replays: rp}
			if n > r.bound {
				over++
			}
			if worst == nil || r.attempts-r.bound > worst.attempts-worst.bound {
				worst = &r
			}
		}
	}
	if !judged {
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	}
	if worst == nil {
		return v.NotApplicable(fmt.Sprintf("the servers (%v) saw no request of this run", svcSeen))
	}
	apart := ""
	if replays > 0 && !c.Strict {
		apart = fmt.Sprintf("; %d transport replays told apart (the same request again at once, on another connection, after an attempt died unanswered), not counted", replays)
	}
	if over == 0 {
		return v.Pass(float64(worst.attempts), float64(worst.bound), fmt.Sprintf("%d request ids, at most %d attempts each by the caller (%s %s)%s", ids, worst.attempts, worst.svc, worst.id, apart))
	}
	declared := fmt.Sprintf("declared max %d", worst.bound)
	if c.MaxAttempts == 0 && contractFor(h, worst.svc).MaxAttempts == 0 {
		declared = fmt.Sprintf("no MaxAttempts declared, universal max %d", worst.bound)
	}
	return v.Fail(float64(worst.attempts), float64(worst.bound), fmt.Sprintf("%d of %d request ids reached the server more often than allowed; worst %s %s %s: %d attempts, %s%s: stop retrying after MaxAttempts in total, counting every layer that retries",
		over, ids, worst.svc, worst.method, worst.id, worst.attempts, declared, apart))
}

// noRetriesDeclared is why the retry-policy checks do not judge a client
// that declares no MaxAttempts; retry.attempts_bounded still holds it to
// harness.UniversalMaxAttempts.
const noRetriesDeclared = "the client declares no retry policy: declare max_attempts (Contract.MaxAttempts) to have its backoff and Retry-After judged; retry.attempts_bounded still bounds its attempts"

// declaresRetries reports whether any of services declares MaxAttempts.
func declaresRetries(h *harness.History, services []string) bool {
	for _, svc := range services {
		if contractFor(h, svc).MaxAttempts > 0 {
			return true
		}
	}
	return false
}

// replayGap is how soon after an attempt died unanswered the same request
// must start again on another connection to be taken for the transport's
// replay. A transport replays at once, but on a loaded 2-core machine its
// goroutine, the dial and the accept were measured up to ~45ms late, and a
// few beyond 50ms when many test processes shared it; a retry the client
// chose within this much of a dead connection is given the benefit of the
// doubt (its answered failures, 5xx and 429, are never taken for replays,
// so flaky-5xx still judges its attempts and backoff).
const replayGap = 250 * time.Millisecond

// transportReplays marks the attempts of one request id (in arrival order)
// that are the transport's replays: the previous attempt got no answer
// (the connection died under it), and this one came at once on another
// connection: a connection the server accepted within replayGap after the
// failure (dialled for the replay: the TLS handshake before the request
// arrives is not a backoff), or an open one it arrived on within replayGap.
func transportReplays(g []serverAttempt) []bool {
	out := make([]bool, len(g))
	for i := 1; i < len(g); i++ {
		prev, cur := g[i-1], g[i]
		end := prev.Arrived
		if prev.Finished > end {
			end = prev.Finished
		}
		start := cur.Arrived
		if cur.ConnAccepted >= end {
			start = cur.ConnAccepted
		}
		out[i] = prev.Status == 0 && cur.ConnID != prev.ConnID && start-end <= replayGap
	}
	return out
}

// RetryBackoff fails on a retry storm. Two measurements:
//
//   - spacing: among request ids the server saw at least twice, the gaps
//     between one attempt's end (its arrival when the end is unknown) and the
//     next attempt's arrival; their median must be >= MinGap. A client that
//     retries at once measures the loopback round trip, well under a
//     millisecond.
//   - amplification: during the service's fault windows, server attempts per
//     logical call started there must be <= MaxAttemptRatio (default 2: retries
//     may at most double the load on a failing service). A client that
//     retries every call MaxAttempts times with no retry budget multiplies it
//     by MaxAttempts; one with a budget adds a fraction.
//
// It is not applicable when neither can be measured (no retries and no
// fault window, or no server truth).
type RetryBackoff struct {
	// Service restricts the check to one service ("" = every service).
	Service string `json:"service,omitempty"`
	// MinGap is the smallest acceptable median gap (default: a quarter of
	// the declared BackoffBase, at least 3ms).
	MinGap time.Duration `json:"min_gap,omitempty"`
	// MaxAttemptRatio bounds server attempts per call in fault windows (default 2).
	MaxAttemptRatio float64 `json:"max_attempt_ratio,omitempty"`
	// MinCalls is the fewest calls in the fault windows needed to judge the
	// ratio (default 20).
	MinCalls int `json:"min_calls,omitempty"`
}

func (RetryBackoff) ID() string { return IDRetryBackoff }

func (c RetryBackoff) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	if !declaresRetries(h, servicesOrAll(h, c.Service)) {
		return v.NotApplicable(noRetriesDeclared)
	}
	var base time.Duration
	for _, svc := range servicesOrAll(h, c.Service) {
		base = max(base, contractFor(h, svc).BackoffBase)
	}
	minGap := cmp.Or(c.MinGap, max(3*time.Millisecond, base/4))
	ratioBound := cmp.Or(c.MaxAttemptRatio, 2)
	minCalls := cmp.Or(c.MinCalls, defaultMinCalls)
	var (
		gaps     []time.Duration
		truth    bool
		worstSvc string
		worstR   = -1.0
		rAtt     int
		rCalls   int
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		truth = true
		groups := bySeq(as)
		for _, seq := range sortedSeqs(groups) {
			for _, g := range retryGaps(groups[seq]) {
				gaps = append(gaps, g.Gap)
			}
		}
		windows := harness.FaultWindows(h, svc)
		if len(windows) == 0 {
			continue
		}
		attempts, calls := 0, 0
		for _, a := range as {
			if inAny(windows, a.Arrived) {
				attempts++
			}
		}
		for _, w := range windows {
			calls += len(serviceCalls(h, svc, w.Start, w.End))
		}
		if calls < minCalls {
			continue
		}
		if r := float64(attempts) / float64(calls); r > worstR {
			worstR, worstSvc, rAtt, rCalls = r, svc, attempts, calls
		}
	}
	if !truth {
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	}
	if len(gaps) == 0 && worstR < 0 {
		return v.NotApplicable("no request was retried and no fault window held enough calls: nothing shows how the client retries")
	}
	if worstR > ratioBound {
		v.Unit = "attempts/call"
		return v.Fail(round2(worstR), ratioBound, fmt.Sprintf("%s: %d server attempts for %d calls during the fault: retries multiply the load on a failing service; cap retries with a retry budget (e.g. retries <= 10-20%% of calls) and back off",
			worstSvc, rAtt, rCalls))
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		med := percentile(gaps, 0.5)
		if med < minGap {
			return v.Fail(ms(med), ms(minGap), fmt.Sprintf("median gap between retries of the same request is %s over %d retries: the client retries at once; wait an exponential, jittered backoff between attempts",
				harness.FormatDuration(med), len(gaps)))
		}
		reason := fmt.Sprintf("median gap between retries %s over %d retries", harness.FormatDuration(med), len(gaps))
		if worstR >= 0 {
			reason += fmt.Sprintf("; %s: %.2f server attempts per call during the fault", worstSvc, worstR)
		}
		return v.Pass(ms(med), ms(minGap), reason)
	}
	v.Unit = "attempts/call"
	return v.Pass(round2(worstR), ratioBound, fmt.Sprintf("%s: %d server attempts for %d calls during the fault; no request was retried", worstSvc, rAtt, rCalls))
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// RetryAfter fails when a retry came sooner than Factor x the wait the
// answer before it asked for in its Retry-After: any status, 429 or 503,
// seconds or an HTTP-date, as the server recorded what it sent. A client
// that will not wait that long (its deadline is nearer, or the wait is
// beyond what it honours) should give up and say so, not retry early into
// a server that asked for room. Measured is the shortest such gap.
type RetryAfter struct {
	// RetryAfter stands for the Retry-After of the 429s of servers that do
	// not record what they sent; recorded answers are judged by their own.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Factor tolerates clock and scheduling slop (default 0.9).
	Factor float64 `json:"factor,omitempty"`
}

func (RetryAfter) ID() string { return IDRetryAfter }

// asked is the wait a's answer asked for, 0 for none.
func (c RetryAfter) asked(a serverAttempt) time.Duration {
	if a.RetryAfter > 0 {
		return a.RetryAfter
	}
	if a.Status == 429 {
		return c.RetryAfter
	}
	return 0
}

func (c RetryAfter) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	if !declaresRetries(h, h.Services) {
		return v.NotApplicable(noRetriesDeclared)
	}
	factor := cmp.Or(c.Factor, 0.9)
	type early struct {
		gap, asked time.Duration
		svc, id    string
		status, n  int
	}
	var (
		truth    bool
		answers  int
		retried  int
		earlies  int
		worst    *early // the retry that came soonest for what it was asked
		shortest = time.Duration(math.MaxInt64)
		askedMin = time.Duration(math.MaxInt64)
	)
	for _, svc := range h.Services {
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		truth = true
		groups := bySeq(as)
		for _, seq := range sortedSeqs(groups) {
			g := groups[seq]
			for i, a := range g {
				want := c.asked(a)
				if want <= 0 {
					continue
				}
				answers++
				askedMin = min(askedMin, want)
				if i+1 == len(g) {
					continue
				}
				retried++
				sent := max(a.Finished, a.Arrived)
				gap := g[i+1].Arrived - sent
				shortest = min(shortest, gap)
				if float64(gap) >= factor*float64(want) {
					continue
				}
				earlies++
				if worst == nil || float64(gap)/float64(want) < float64(worst.gap)/float64(worst.asked) {
					worst = &early{gap: gap, asked: want, svc: svc, id: a.RequestID, status: a.Status, n: g[i+1].Attempt}
				}
			}
		}
	}
	switch {
	case !truth:
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	case answers == 0:
		return v.NotApplicable("no answer of the servers carried a Retry-After in this run")
	case retried == 0:
		return v.Pass(ms(askedMin), ms(time.Duration(factor*float64(askedMin))), fmt.Sprintf("%d answers asked for a wait (Retry-After), none retried: the client gave up rather than retry early", answers))
	case worst != nil:
		return v.Fail(ms(worst.gap), ms(time.Duration(factor*float64(worst.asked))), fmt.Sprintf("%d of %d retries after an answer with a Retry-After came before the wait it asked; worst: %s %s answered %d with Retry-After %s, and attempt %d arrived %s after it: parse Retry-After (seconds or an HTTP-date) and wait at least that long before the next attempt, or give up when the wait is longer than the call may take",
			earlies, retried, worst.svc, worst.id, worst.status, harness.FormatDuration(worst.asked), worst.n, harness.FormatDuration(worst.gap)))
	}
	return v.Pass(ms(shortest), ms(time.Duration(factor*float64(askedMin))), fmt.Sprintf("all %d retries after an answer with a Retry-After waited what it asked (shortest asked %s); shortest wait %s", retried, harness.FormatDuration(askedMin), harness.FormatDuration(shortest)))
}
