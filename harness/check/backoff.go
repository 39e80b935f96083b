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

// retryGap is one wait of the caller between two of its attempts of one
// call, as the server saw it: from the end of the attempt before (its
// arrival when the end is unknown or later than the next arrival) to the
// next attempt's arrival.
type retryGap struct {
	Gap   time.Duration
	From  time.Duration // when the wait began: the end of After, or its arrival
	After serverAttempt // the attempt the caller waited after
	N     int           // 1 for the wait before the first retry
}

// retryGaps returns the caller's waits within one call's attempts g (in
// arrival order), the transport's replays left out: a replay is the
// transport's, not a wait the client chose.
func retryGaps(g []serverAttempt) []retryGap {
	replay := transportReplays(g)
	var out []retryGap
	for i := 1; i < len(g); i++ {
		if replay[i] {
			continue
		}
		from := g[i-1].Arrived
		if g[i-1].Finished >= from && g[i-1].Finished <= g[i].Arrived {
			from = g[i-1].Finished
		}
		out = append(out, retryGap{Gap: g[i].Arrived - from, From: from, After: g[i-1], N: len(out) + 1})
	}
	return out
}

// ownBackoff reports whether the caller's wait after a chose its own
// backoff: an answer with a Retry-After (and any 429) sets the wait
// instead.
func ownBackoff(a serverAttempt) bool { return a.Status != 429 && a.RetryAfter == 0 }

// backoffOf returns a contract's declared backoff: the first delay, the
// growth per retry (2 unless declared) and the cap (0: none).
func backoffOf(ct harness.Contract) (base time.Duration, mult float64, cap time.Duration) {
	return ct.BackoffBase, cmp.Or(ct.BackoffMultiplier, 2), ct.BackoffCap
}

// backoffCeiling is the declared delay before retry n (1 for the first),
// before jitter.
func backoffCeiling(ct harness.Contract, n int) time.Duration {
	base, mult, cp := backoffOf(ct)
	d := float64(base) * math.Pow(mult, float64(n-1))
	if cp > 0 {
		d = min(d, float64(cp))
	}
	return time.Duration(min(d, float64(math.MaxInt64/2)))
}

// BackoffGrows fails a client whose backoff does not grow as declared: a
// client configured for exponential backoff that waits the same delay
// before every retry gives a struggling server no more room on the third
// attempt than on the second. Over the calls the server saw at least three
// times, the median wait before the second retry over the median wait
// before the first must reach a third of the way from 1 (no growth) to the
// declared growth (Contract.BackoffMultiplier, capped by BackoffCap), or
// their difference a third of the declared one (the growth of the delay's
// median under Contract.BackoffJitter): a loaded machine adds the same
// scheduling delay to both waits, which pulls a ratio toward 1 but leaves
// a difference whole. A backoff that does not grow fails both. Medians over
// many calls hold for any jitter that scales with the delay (full, equal,
// none); waits after a 429 (set by its Retry-After) are left out, as are the
// transport's replays.
type BackoffGrows struct {
	// Service restricts the check to one service ("" = every service).
	Service string `json:"service,omitempty"`
	// MinCalls is the fewest calls with two waits needed (default 8).
	MinCalls int `json:"min_calls,omitempty"`
}

func (BackoffGrows) ID() string { return IDRetryBackoffGrows }

func (c BackoffGrows) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "x")
	minCalls := cmp.Or(c.MinCalls, 8)
	type result struct {
		svc             string
		ratio, bound    float64
		want            float64
		first, secnd    time.Duration
		diff, diffBound time.Duration
		calls           int
	}
	var (
		worst    *result
		truth    bool
		why      []string
		declared bool
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		ct := contractFor(h, svc)
		if ct.MaxAttempts < 3 || ct.BackoffBase <= 0 {
			continue
		}
		declared = true
		want := float64(backoffCeiling(ct, 2)) / float64(backoffCeiling(ct, 1))
		if want < 1.3 {
			why = append(why, fmt.Sprintf("%s's declared backoff barely grows before its second retry (x%.2f)", svc, want))
			continue
		}
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		truth = true
		var first, second []time.Duration
		groups := bySeq(as)
		for _, seq := range sortedSeqs(groups) {
			gaps := retryGaps(groups[seq])
			if len(gaps) < 2 || !ownBackoff(gaps[0].After) || !ownBackoff(gaps[1].After) {
				continue
			}
			first, second = append(first, gaps[0].Gap), append(second, gaps[1].Gap)
		}
		if len(first) < minCalls {
			why = append(why, fmt.Sprintf("%s: %d calls retried twice on their own backoff, %d needed", svc, len(first), minCalls))
			continue
		}
		slices.Sort(first)
		slices.Sort(second)
		m1, m2 := percentile(first, 0.5), percentile(second, 0.5)
		wantDiff := float64(backoffCeiling(ct, 2)-backoffCeiling(ct, 1)) * (1 - min(max(ct.BackoffJitter, 0), 1)/2)
		r := result{svc: svc, want: want, bound: round2(1 + (want-1)/3), first: m1, secnd: m2, calls: len(first),
			diff: m2 - m1, diffBound: time.Duration(wantDiff / 3)}
		r.ratio = round2(float64(m2) / float64(max(m1, time.Microsecond)))
		if worst == nil || grows(r.ratio, r.bound, r.diff, r.diffBound) < grows(worst.ratio, worst.bound, worst.diff, worst.diffBound) {
			worst = &r
		}
	}
	switch {
	case !declared:
		return v.NotApplicable("no service declares a backoff that could grow: declare max_attempts >= 3 and backoff_base (Contract.BackoffBase; backoff_multiplier, default 2, and backoff_cap say how it grows)")
	case worst == nil && !truth && len(why) == 0:
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	case worst == nil:
		return v.NotApplicable(fmt.Sprintf("nothing shows the backoff's growth: %v", why))
	}
	reason := fmt.Sprintf("%s: over %d calls retried twice, the median wait before the second retry is %s, before the first %s: x%.2f (declared x%.2f), %s longer (a third of the declared growth of the median: %s)",
		worst.svc, worst.calls, harness.FormatDuration(worst.secnd), harness.FormatDuration(worst.first), worst.ratio, worst.want,
		harness.FormatDuration(worst.diff), harness.FormatDuration(worst.diffBound))
	if grows(worst.ratio, worst.bound, worst.diff, worst.diffBound) < 1 {
		return v.Fail(worst.ratio, worst.bound, reason+": the backoff does not grow between retries; multiply the delay per attempt (up to the cap) as declared")
	}
	return v.Pass(worst.ratio, worst.bound, reason)
}

// grows is how far the measured growth reaches its bounds: the better of
// ratio/bound and diff/diffBound; below 1 the backoff does not grow.
func grows(ratio, bound float64, diff, diffBound time.Duration) float64 {
	return max(ratio/bound, float64(diff)/float64(max(diffBound, time.Microsecond)))
}

// BackoffBounded fails a client that waits longer between attempts than
// its declared backoff allows: a cap (Contract.BackoffCap) it ignores, a
// multiplier larger than declared, a delay in the wrong unit. Over the
// waits on the client's own backoff (not after a 429, not the transport's
// replays), with at least MinCalls per retry number: the median wait before
// the first retry must stay within the declared first delay (BackoffBase)
// plus half of it, at least 25ms; the median wait before each later retry
// n may exceed the first's by no more than the declared delays differ
// (BackoffBase x BackoffMultiplier^(n-1), capped by BackoffCap, less
// BackoffBase) plus a quarter of that, at least 10ms. The median of any
// jitter lies below its delay; a loaded machine stretches every wait alike,
// which a difference cancels and the first retry's margin absorbs.
type BackoffBounded struct {
	// Service restricts the check to one service ("" = every service).
	Service string `json:"service,omitempty"`
	// MinCalls is the fewest waits per retry number judged (default 8).
	MinCalls int `json:"min_calls,omitempty"`
}

func (BackoffBounded) ID() string { return IDRetryBackoffBounded }

func (c BackoffBounded) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	minCalls := cmp.Or(c.MinCalls, 8)
	type result struct {
		svc           string
		n, waits      int
		median, bound time.Duration // for n > 1: over the first retry's median
		declared      time.Duration
		first         time.Duration // the first retry's median, for n > 1
	}
	var (
		worst    *result
		truth    bool
		declared bool
		judged   []string
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		ct := contractFor(h, svc)
		if ct.MaxAttempts < 2 || ct.BackoffBase <= 0 {
			continue
		}
		declared = true
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		truth = true
		byN := make([][]time.Duration, ct.MaxAttempts)
		groups := bySeq(as)
		for _, seq := range sortedSeqs(groups) {
			for _, g := range retryGaps(groups[seq]) {
				if g.N < len(byN) && ownBackoff(g.After) {
					byN[g.N] = append(byN[g.N], g.Gap)
				}
			}
		}
		if len(byN[1]) < minCalls {
			continue
		}
		var first time.Duration
		for n := 1; n < len(byN); n++ {
			if len(byN[n]) < minCalls {
				continue
			}
			slices.Sort(byN[n])
			d := backoffCeiling(ct, n)
			r := result{svc: svc, n: n, waits: len(byN[n]), median: percentile(byN[n], 0.5), declared: d, bound: d + max(d/2, 25*time.Millisecond)}
			if n == 1 {
				first = r.median
			} else {
				grow := d - backoffCeiling(ct, 1)
				r.first, r.median, r.declared, r.bound = first, r.median-first, grow, grow+max(grow/4, 10*time.Millisecond)
			}
			judged = append(judged, fmt.Sprintf("%s retry %d (%d waits)", svc, n, r.waits))
			if worst == nil || float64(r.median)/float64(r.bound) > float64(worst.median)/float64(worst.bound) {
				worst = &r
			}
		}
	}
	switch {
	case !declared:
		return v.NotApplicable("no service declares a backoff: declare max_attempts >= 2 and backoff_base (Contract.BackoffBase; backoff_multiplier, default 2, and backoff_cap say how it grows)")
	case !truth:
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	case worst == nil:
		return v.NotApplicable(fmt.Sprintf("fewer than %d waits on the client's own backoff before any retry number: nothing shows how long it waits", minCalls))
	}
	reason := fmt.Sprintf("%s: the median wait before retry 1 is %s over %d waits, declared %s (BackoffBase); judged: %v",
		worst.svc, harness.FormatDuration(worst.median), worst.waits, harness.FormatDuration(worst.declared), judged)
	if worst.n > 1 {
		reason = fmt.Sprintf("%s: the median wait before retry %d is %s over %d waits, %s longer than before retry 1 (%s), declared %s longer (BackoffBase x BackoffMultiplier^%d, capped by BackoffCap, less BackoffBase); judged: %v",
			worst.svc, worst.n, harness.FormatDuration(worst.first+worst.median), worst.waits, harness.FormatDuration(worst.median), harness.FormatDuration(worst.first),
			harness.FormatDuration(worst.declared), worst.n-1, judged)
	}
	if worst.median > worst.bound {
		return v.Fail(ms(worst.median), ms(worst.bound), reason+": the client waits longer than its declared backoff; apply the cap (and the declared base and multiplier) to every delay")
	}
	return v.Pass(ms(worst.median), ms(worst.bound), reason)
}

// minJudgedJitter is the least declared jitter retry.jitter judges: below
// it a jittered backoff spreads its waits no more than scheduling noise.
const minJudgedJitter = 0.25

// togetherWithin is how close two calls' failed attempts must end for the
// calls to count as failing together, and maxPartners bounds the pairs one
// call is compared in.
const (
	togetherWithin = time.Millisecond
	maxPartners    = 8
)

// longWait is the least median wait retry.jitter judges by the spread of
// the waits themselves: beside half a second, the scheduling noise of a
// loaded machine (a few milliseconds, tens at worst) is small.
const longWait = 500 * time.Millisecond

// Jitter fails a client that declares a jittered backoff and waits the
// same delay in every call: callers that fail together then retry
// together, in synchronized waves against a server that is recovering.
// Judged from the client's own waits (not those a Retry-After set), two
// ways, and the worse of the two decides:
//
//   - Pairs. For every two calls whose attempts before the same retry n
//     failed within 1ms of each other, the difference between their waits.
//     A delay drawn uniformly over a width W = Contract.BackoffJitter x the
//     declared delay before retry n puts the median difference at
//     (1 - 1/sqrt 2) x W, ~0.29 W; each difference is taken in units of
//     that, and their median must reach a third. A delay without jitter
//     measures only the difference of two timers that fire at the same
//     moment, well under a millisecond even on a loaded machine, where the
//     waits themselves are not: CPU starvation stretches waits by tens of
//     milliseconds, but stretches the waits of calls that failed together
//     alike.
//   - Spread. Where the waits before retry n are long (median over
//     longWait), their interquartile range over their median: a delay drawn
//     uniformly over the top BackoffJitter of its value spreads its middle
//     half over (j/2)/(1-j/2) of the median (a third for equal jitter); it
//     must reach a sixth of that. This judges the client's waits as they
//     are, however far from the declared delays: waits of seconds without
//     jitter are the lock-step the check is for. Over 15 waits a jittered
//     client falls below the bound less than once in 5000 runs.
type Jitter struct {
	// Service restricts the check to one service ("" = every service).
	Service string `json:"service,omitempty"`
	// MinPairs is the fewest pairs of calls failing together needed
	// (default 20).
	MinPairs int `json:"min_pairs,omitempty"`
	// MinWaits is the fewest long waits before one retry needed to judge
	// their spread (default 15).
	MinWaits int `json:"min_waits,omitempty"`
}

func (Jitter) ID() string { return IDRetryJitter }

// jitterResult is one judgement of retry.jitter: measured against bound,
// in the unit the reason gives.
type jitterResult struct {
	measured, bound float64
	reason          string
}

func (r jitterResult) worseThan(o *jitterResult) bool {
	return o == nil || r.measured/r.bound < o.measured/o.bound
}

func (c Jitter) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "share")
	minPairs := cmp.Or(c.MinPairs, defaultMinCalls)
	minWaits := cmp.Or(c.MinWaits, 15)
	var (
		worst    *jitterResult
		truth    bool
		declared bool
		why      []string
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		ct := contractFor(h, svc)
		j := min(ct.BackoffJitter, 1)
		if ct.MaxAttempts < 2 || ct.BackoffBase <= 0 || j < minJudgedJitter {
			continue
		}
		declared = true
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		truth = true
		byRetry := map[int][]retryGap{} // own-backoff waits by retry number
		groups := bySeq(as)
		for _, seq := range sortedSeqs(groups) {
			for _, g := range retryGaps(groups[seq]) {
				if !ownBackoff(g.After) {
					break // a Retry-After set this wait, and the ones after count from it
				}
				byRetry[g.N] = append(byRetry[g.N], g)
			}
		}
		judged := false
		if r, ok := jitterPairs(svc, ct, j, byRetry, minPairs); ok {
			judged = true
			if r.worseThan(worst) {
				worst = &r
			}
		}
		if r, ok := jitterSpread(svc, j, byRetry, minWaits); ok {
			judged = true
			if r.worseThan(worst) {
				worst = &r
			}
		}
		if !judged {
			why = append(why, fmt.Sprintf("%s: fewer than %d pairs of calls failing within %s of each other, and fewer than %d waits of over %s before one retry", svc, minPairs, harness.FormatDuration(togetherWithin), minWaits, harness.FormatDuration(longWait)))
		}
	}
	switch {
	case !declared:
		return v.NotApplicable(fmt.Sprintf("no service declares a jittered backoff: declare max_attempts >= 2, backoff_base and backoff_jitter >= %.2f (Contract.BackoffJitter: 1 full jitter, 0.5 equal jitter)", minJudgedJitter))
	case worst == nil && !truth:
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	case worst == nil:
		return v.NotApplicable(fmt.Sprintf("too few retries on the client's own backoff to see whether they are spread: %s", strings.Join(why, "; ")))
	}
	if worst.measured < worst.bound {
		return v.Fail(round3(worst.measured), round3(worst.bound), worst.reason+": calls that fail together retry together; draw each delay at random as declared")
	}
	return v.Pass(round3(worst.measured), round3(worst.bound), worst.reason)
}

// jitterPairs judges the waits of calls that failed together (see
// Jitter): the median difference of their waits, in units of what the
// declared jitter puts there.
func jitterPairs(svc string, ct harness.Contract, j float64, byRetry map[int][]retryGap, minPairs int) (jitterResult, bool) {
	var units []float64
	for _, n := range slices.Sorted(maps.Keys(byRetry)) {
		gaps := slices.SortedFunc(slices.Values(byRetry[n]), func(a, b retryGap) int { return cmp.Compare(a.From, b.From) })
		expected := (1 - 1/math.Sqrt2) * j * float64(backoffCeiling(ct, n))
		if expected <= 0 {
			continue
		}
		for i := range gaps {
			for k := i + 1; k < len(gaps) && k <= i+maxPartners && gaps[k].From-gaps[i].From <= togetherWithin; k++ {
				d := gaps[k].Gap - gaps[i].Gap
				units = append(units, float64(max(d, -d))/expected)
			}
		}
	}
	if len(units) < minPairs {
		return jitterResult{}, false
	}
	slices.Sort(units)
	med := units[(len(units)-1)/2]
	return jitterResult{measured: med, bound: 1.0 / 3, reason: fmt.Sprintf(
		"%s: over %d pairs of calls whose attempts before the same retry failed within %s of each other, their waits differ by %.2f of what the declared jitter (%.2f) puts there at the median, at least 1/3 needed",
		svc, len(units), harness.FormatDuration(togetherWithin), med, j)}, true
}

// jitterSpread judges the long waits before each retry (see Jitter): their
// interquartile range over their median, against a sixth of what a delay
// drawn over the declared jitter spreads.
func jitterSpread(svc string, j float64, byRetry map[int][]retryGap, minWaits int) (jitterResult, bool) {
	var (
		worst jitterResult
		found bool
	)
	want := (j / 2) / (1 - j/2)
	for _, n := range slices.Sorted(maps.Keys(byRetry)) {
		if len(byRetry[n]) < minWaits {
			continue
		}
		waits := make([]time.Duration, len(byRetry[n]))
		for i, g := range byRetry[n] {
			waits[i] = g.Gap
		}
		slices.Sort(waits)
		med := percentile(waits, 0.5)
		if med < longWait {
			continue
		}
		iqr := percentile(waits, 0.75) - percentile(waits, 0.25)
		r := jitterResult{measured: float64(iqr) / float64(med), bound: want / 6, reason: fmt.Sprintf(
			"%s: the %d waits before retry %d spread their middle half over %s around a median of %s, %.3f of it; the declared jitter (%.2f) spreads ~%.2f, at least %.3f needed",
			svc, len(waits), n, harness.FormatDuration(iqr), harness.FormatDuration(med), float64(iqr)/float64(med), j, want, want/6)}
		if !found || r.worseThan(&worst) {
			worst, found = r, true
		}
	}
	return worst, found
}

// GivesUpPromptly fails a client that, done with a call, still waits before
// it hands the caller the outcome: it sleeps a backoff after its last
// attempt, or honours a Retry-After longer than it will wait and sleeps
// until its deadline instead of giving the answer back. Measured per
// service and final answer (a 503, a 429...): from the server's end of the
// last attempt of a call answered with a retryable failure (429 or 5xx) to
// the call's return at the caller, whether it returned that answer or an
// error. The median over at least MinCalls calls must stay within a
// quarter of the backoff that would follow the last declared attempt,
// between 10ms and 100ms (25ms when no backoff is declared): a client that
// returns at once measures the loopback and its scheduling. Calls the client
// ended refusing another attempt itself (its breaker open, its pool full)
// are left out: they waited for a reason.
type GivesUpPromptly struct {
	// Service restricts the check to one service ("" = every service).
	Service string `json:"service,omitempty"`
	// MinCalls is the fewest calls per final answer judged (default 3).
	MinCalls int `json:"min_calls,omitempty"`
}

func (GivesUpPromptly) ID() string { return IDRetryGivesUpPromptly }

// givesUpBound is how long after a call's last answer service's calls may
// return: a quarter of the backoff that would follow the last declared
// attempt, within [10ms, 100ms].
func givesUpBound(ct harness.Contract) time.Duration {
	if ct.BackoffBase <= 0 {
		return 25 * time.Millisecond
	}
	return min(max(backoffCeiling(ct, max(1, ct.MaxAttempts))/4, 10*time.Millisecond), 100*time.Millisecond)
}

func (c GivesUpPromptly) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	minCalls := cmp.Or(c.MinCalls, 3)
	type group struct {
		svc    string
		status int
		tails  []time.Duration
		worst  uint32 // the seq of the longest tail
	}
	var (
		truth  bool
		worst  *group
		wMed   time.Duration
		wBound time.Duration
		judged []string
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		as, ok := serverAttempts(h, svc)
		if !ok {
			continue
		}
		truth = true
		bound := givesUpBound(contractFor(h, svc))
		attempts := bySeq(as)
		groups := map[int]*group{}
		for _, call := range serviceCalls(h, svc, 0, math.MaxInt64) {
			g := attempts[call.Seq]
			if len(g) == 0 || call.Class == harness.ClassCircuitOpen || call.Class == harness.ClassPoolExhausted || call.Class == harness.ClassHang {
				continue
			}
			last := g[len(g)-1]
			if (last.Status != 429 && last.Status < 500) || last.Finished < 0 {
				continue
			}
			gr := groups[last.Status]
			if gr == nil {
				gr = &group{svc: svc, status: last.Status}
				groups[last.Status] = gr
			}
			tail := max(time.Duration(call.End)-last.Finished, 0)
			if len(gr.tails) == 0 || tail > slices.Max(gr.tails) {
				gr.worst = call.Seq
			}
			gr.tails = append(gr.tails, tail)
		}
		for _, status := range slices.Sorted(maps.Keys(groups)) {
			gr := groups[status]
			if len(gr.tails) < minCalls {
				continue
			}
			judged = append(judged, fmt.Sprintf("%s %d (%d calls)", svc, status, len(gr.tails)))
			slices.Sort(gr.tails)
			med := percentile(gr.tails, 0.5)
			if worst == nil || float64(med)/float64(bound) > float64(wMed)/float64(wBound) {
				worst, wMed, wBound = gr, med, bound
			}
		}
	}
	switch {
	case !truth:
		return v.NotApplicable("no server-side truth: the attempts per request id could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	case worst == nil:
		return v.NotApplicable(fmt.Sprintf("fewer than %d calls per service and status ended on a 429 or 5xx answer: nothing shows how the client gives up", minCalls))
	}
	reason := fmt.Sprintf("%s: the median call ending on a %d returned %s after the server sent its last answer (%d calls; slowest %s, request id %s); judged: %v",
		worst.svc, worst.status, harness.FormatDuration(wMed), len(worst.tails), harness.FormatDuration(worst.tails[len(worst.tails)-1]), h.RequestID(worst.worst), judged)
	if wMed > wBound {
		return v.Fail(ms(wMed), ms(wBound), reason+": the client waits before giving up; once it will not retry (attempts spent, a Retry-After longer than it waits or than its deadline), hand the answer back at once")
	}
	return v.Pass(ms(wMed), ms(wBound), reason)
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
