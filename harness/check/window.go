package check

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Check ids. The catalog, the broken-client gallery and reports refer to
// checks by these strings; they are part of the saved verdict format.
const (
	IDLeakGoroutines      = "leak.goroutines"
	IDLeakFDs             = "leak.fds"
	IDLeakServerConns     = "leak.server_connections"
	IDNoHang              = "timeout.no_hang"
	IDPoolBound           = "pool.bound"
	IDPoolChurn           = "pool.churn"
	IDPoolExhaustion      = "pool.exhaustion_fail_fast"
	IDTimeoutRequestBound = "timeout.request_bound"
	IDRetryAttempts       = "retry.attempts_bounded"
	IDRetryBackoff        = "retry.backoff"
	IDRetryAfter          = "retry.retry_after"
	IDLedgerNoDuplicate   = "ledger.no_duplicate_charge"
	IDBreakerOpens        = "breaker.opens"
	IDBreakerHalfOpen     = "breaker.half_open_probes"
	IDBreakerRecovers     = "breaker.recovers"
	IDIsolation           = "isolation"
	IDRecoveryThroughput  = "recovery.throughput"
	IDRecoveryLatency     = "recovery.latency"
	IDIntegrityDigest     = "integrity.digest"
	IDGoodput             = "goodput"
	IDCallerDeadline      = "timeout.caller_deadline"
	IDPoolLifetime        = "pool.max_lifetime"
	IDPoolIdleTimeout     = "pool.idle_timeout"
	IDMetricsTruthful     = "metrics.truthful"
	IDAbandonedWork       = "timeout.abandoned_work"
	IDTimeoutConnect      = "timeout.connect"
)

// Check ids of the retry oracles: the retry bugs real client libraries
// shipped that the checks above certified alike with their fixes.
const (
	IDRetryBackoffGrows    = "retry.backoff_grows"
	IDRetryJitter          = "retry.jitter"
	IDRetryGivesUpPromptly = "retry.gives_up_promptly"
	IDRetryAttemptsUsed    = "retry.attempts_used"
	IDRetryBackoffBounded  = "retry.backoff_bounded"
)

// Doc describes one check for reports and the CLI's help.
type Doc struct {
	ID      string
	Needs   string // what the history must hold for the check to apply
	Summary string // what it holds the client to
}

var checkDocs = []Doc{
	{IDLeakGoroutines, "goroutines measured after teardown; not applicable to a driver", "no client goroutine is left running after teardown"},
	{IDLeakFDs, "/proc/self/fd, or a driver's /proc/<pid>", "file descriptors return to the baseline after teardown; a driver's process keeps no more fds, sockets or threads after idle close than before its first call"},
	{IDLeakServerConns, "server truth", "the servers see every connection closed after teardown"},
	{IDNoHang, "calls", "no call outlives the watchdog"},
	{IDPoolBound, "server truth", "peak server-side connections per service <= Contract.MaxConns, and calls in flight <= Contract.MaxInFlight where declared (HTTP/2 shares connections)"},
	{IDPoolChurn, "server truth, enough steady-state calls", "new connections per 1000 calls in steady state (after warm-up, outside faults that cost connections: 5xx, 429 and delays answer whole and count as steady state) stay near zero"},
	{IDPoolExhaustion, "the injected latency (from the scenario)", "under pool exhaustion, p99 latency <= latency + the call's pool wait (Contract.PoolWait, else MaxAttempts x AttemptPoolWait) + margin: fail fast instead of queueing"},
	{IDTimeoutRequestBound, "calls", "every call ends within its timeout (Contract.RequestTimeout, else MaxAttempts x AttemptTimeout) + margin"},
	{IDRetryAttempts, "server truth", "server-side attempts per X-Request-ID <= Contract.MaxAttempts"},
	{IDRetryBackoff, "server truth, retries or a fault window", "retries are spaced (median gap >= a quarter of Contract.BackoffBase, at least 3ms) and do not multiply the load on a failing service"},
	{IDRetryAfter, "server truth, answers carrying a Retry-After (any status; seconds or an HTTP-date, as the servers recorded them)", "no retry after such an answer arrives before 0.9 x the wait it asked: wait, or give up"},
	{IDLedgerNoDuplicate, "payment server truth, charge calls", "no order charged twice; a charge reported ok was made exactly once; a locally rejected charge was not charged (it never reached the server, or none of its attempts was charged)"},
	{IDBreakerOpens, "a declared breaker, a fault window", "during an outage the attempts reaching the server collapse and failures are fast"},
	{IDBreakerHalfOpen, "a declared breaker, a fault window, server truth", "half-open lets only Contract.HalfOpenProbes attempts through"},
	{IDBreakerRecovers, "a declared breaker, a closed fault window", "calls succeed again within Contract.RecoveryTime (+ the open delay) after the fault clears"},
	{IDIsolation, "the down service, a fault window, a baseline", "an outage of one service leaves the others' success rate and latency intact"},
	{IDRecoveryThroughput, "a closed fault window, a baseline before it", "throughput after the fault returns to >= 70% of the baseline"},
	{IDRecoveryLatency, "a closed fault window, a baseline before it", "p50 latency after the fault returns to <= 2 x baseline + 20ms"},
	{IDIntegrityDigest, "bodies with a digest", "no 2xx body handed back corrupted or truncated"},
	{IDGoodput, "calls (and, under a fault that fails attempts, the share it fails, from the scenario)", "with no fault, or a fault the contract's timeouts allow, >= 96% of calls succeed; under a fault failing a share p of attempts, >= 1 - p^MaxAttempts - 4% (less where a declared RetryBudget bounds it)"},
	{IDCallerDeadline, "calls the caller gave up on (Workload.Caller)", "a call whose context had a deadline or was cancelled returns within 1.5 x its limit + 400ms"},
	{IDPoolLifetime, "server truth (connection accept times), a declared Contract.MaxConnLifetime, traffic spanning longer than it", "no request starts on a connection older than MaxConnLifetime + max(half of it, 1s)"},
	{IDPoolIdleTimeout, "server truth (per-connection requests and closes), a declared Contract.IdleTimeout, a pause in traffic longer than it", "no connection stays open without a request for longer than IdleTimeout + max(half of it, 700ms)"},
	{IDMetricsTruthful, "a client reporting its pool metrics (harness.MetricsGatherer, a driver's metrics_url), server truth", "its active + idle connections agree with the servers' open connections, its active ones with the calls holding a connection (within max(2, 25%), in half the samples at least), and its connection errors count at least half of those the calls returned"},
	{IDAbandonedWork, "server truth (per-request arrival and finish), calls that ended while their request was unanswered at the server", "a request stops at the server once its call returned (500ms grace): never more requests in flight than MaxInFlight (on HTTP/1.1 MaxConns) + max(a quarter, 4) with more than the margin of them orphaned"},
	{IDTimeoutConnect, "a declared Contract.ConnectTimeout, a connect stall (an upstream timeout toxic after the proxy dropped its connections), server truth, calls in it that never reached the server", "a call whose connections never complete fails within MaxAttempts x ConnectTimeout + the declared backoff + PoolWait (never more than RequestTimeout) + max(half of it, 500ms)"},
	{IDRetryBackoffGrows, "server truth, a declared BackoffBase and MaxAttempts >= 3, calls retried twice", "the median wait before the second retry over the one before the first reaches a third of the way to the declared growth (Contract.BackoffMultiplier, default 2, capped by BackoffCap), or exceeds it by a third of the declared growth of the median (jittered by Contract.BackoffJitter)"},
	{IDRetryJitter, "server truth, a declared BackoffJitter >= 0.25, and 20 pairs of calls whose attempts before the same retry failed within 1ms of each other, or 15 waits before one retry with a median over 500ms", "calls that fail together do not retry together: the median difference of their waits >= a third of what Contract.BackoffJitter gives (~0.29 x jitter x the declared delay); long waits spread their middle half over >= a sixth of what the jitter gives ((j/2)/(1-j/2) of the median)"},
	{IDRetryGivesUpPromptly, "server truth, calls ending on a 429 or 5xx answer", "a call whose last attempt was answered with a 429 or 5xx returns within a quarter of the next declared backoff (10-100ms, median per status) of that answer: no sleep after the last attempt, none for a Retry-After the client will not honour"},
	{IDRetryAttemptsUsed, "server truth, a declared MaxAttempts >= 2, calls handed back on a 5xx (or the scenario's status)", "at most 10% of the calls it may send again (GETs, keyed charges) handed back on a retryable answer had attempts, an honoured Retry-After (Contract.MaxRetryAfter) and time left for another; with a declared Contract.RetryBudget, at least 10% of the retriable answers after each attempt number (with 20 or more) are retried"},
	{IDRetryBackoffBounded, "server truth, a declared BackoffBase, waits on the client's own backoff", "the median wait before the first retry <= BackoffBase + half (at least 25ms); before each later retry it exceeds the first by no more than the declared delays differ (BackoffMultiplier, capped by BackoffCap) + a quarter (at least 10ms)"},
}

// Docs lists every check the harness has, in report order.
func Docs() []Doc { return slices.Clone(checkDocs) }

// AllIDs lists every check id, in report order.
func AllIDs() []string {
	out := make([]string, len(checkDocs))
	for i, d := range checkDocs {
		out[i] = d.ID
	}
	return out
}

// inAny reports whether t lies in one of ws.
func inAny(ws []harness.Window, t time.Duration) bool {
	for _, w := range ws {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// contractFor is the contract the history declares for service.
func contractFor(h *harness.History, service string) harness.Contract { return h.Profile.For(service) }

// perAttempt says how ct's per-call bound call grew from its per-attempt
// bound attempt (" (3 attempts x 250ms)"), or "" when it did not, so that a
// verdict on a retrying client shows the bound it was really held to.
func perAttempt(ct harness.Contract, call, attempt time.Duration) string {
	attempts := max(1, ct.MaxAttempts) // undeclared: one attempt
	if attempt <= 0 || call != time.Duration(attempts)*attempt {
		return ""
	}
	noun := "attempts"
	if attempts == 1 {
		noun = "attempt"
	}
	return fmt.Sprintf(" (%d %s x %s)", attempts, noun, harness.FormatDuration(attempt))
}

// defaultMinCalls is the fewest calls a check takes a percentile or a rate
// over unless told otherwise: fewer make one slow or failed call decide it.
const defaultMinCalls = 20

// serviceCalls returns the calls to service started in [from, to), sorted
// by start, but those the caller gave up on: their failures are not the
// client's.
func serviceCalls(h *harness.History, service string, from, to time.Duration) []harness.CallRecord {
	id := harness.ServiceIDOf(service)
	var out []harness.CallRecord
	for i := range h.Calls {
		c := h.Calls[i]
		if c.Service == id && time.Duration(c.Start) >= from && time.Duration(c.Start) < to && !h.CallerGaveUp(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b harness.CallRecord) int { return cmp.Compare(a.Start, b.Start) })
	return out
}

// latencies returns the latencies of calls, optionally only of those keep
// selects, sorted ascending.
func latencies(calls []harness.CallRecord, keep func(harness.CallRecord) bool) []time.Duration {
	out := make([]time.Duration, 0, len(calls))
	for _, c := range calls {
		if keep == nil || keep(c) {
			out = append(out, c.Latency())
		}
	}
	slices.Sort(out)
	return out
}

// percentile is the nearest-rank percentile (p in 0..1) of sorted values;
// 0 for none. Sorting is exact and O(n log n), which is all a history of
// 100k calls needs.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func successRate(calls []harness.CallRecord) float64 {
	if len(calls) == 0 {
		return 0
	}
	ok := 0
	for _, c := range calls {
		if c.OK() {
			ok++
		}
	}
	return float64(ok) / float64(len(calls))
}

// okRate is the successful calls per second among calls over span.
func okRate(calls []harness.CallRecord, span time.Duration) float64 {
	if span <= 0 {
		return 0
	}
	ok := 0
	for _, c := range calls {
		if c.OK() {
			ok++
		}
	}
	return float64(ok) / span.Seconds()
}

// serverAttempt is one request the server saw, with times as offsets from
// the workload start.
type serverAttempt struct {
	RequestID string
	Seq       uint32
	Attempt   int
	Arrived   time.Duration
	Finished  time.Duration // -1 when the server recorded no end
	Status    int
	Method    string
	Fault     string
	OrderID   string
	ConnID    uint64
	// Reused: an earlier request of this run arrived on the same connection
	// (a kept-alive connection, which may have died while idle).
	Reused bool
	// ConnAccepted is when the server accepted the attempt's connection
	// (an offset; -1 when unknown).
	ConnAccepted time.Duration
	// RetryAfter is the wait the answer's Retry-After asked for, 0 when it
	// carried none.
	RetryAfter time.Duration
}

// serverTruth returns the stats of service after the run, or false.
func serverTruth(h *harness.History, service string) (*fakeservers.Stats, bool) {
	t, ok := h.ServerAfterRun[service]
	if !ok || !t.Available || t.Stats == nil {
		return nil, false
	}
	return t.Stats, true
}

// offset converts a server time to an offset from the workload start. It
// assumes the servers' clock is the harness's (embedded, or docker on the
// same host); a remote environment with a skewed clock shifts every server
// time by the skew.
func offset(h *harness.History, t time.Time) time.Duration { return t.Sub(h.Started) }

// serverAttempts returns the requests this run sent that service saw, in
// arrival order: those whose X-Request-ID carries the run's prefix, so that
// requests of earlier runs on a shared server are never counted.
func serverAttempts(h *harness.History, service string) ([]serverAttempt, bool) {
	st, ok := requestTruth(h, service)
	if !ok {
		return nil, false
	}
	out := make([]serverAttempt, 0, len(st.Requests))
	used := make(map[uint64]bool)
	accepted := make(map[uint64]time.Duration, len(st.Connections))
	for _, cn := range st.Connections {
		accepted[cn.ID] = offset(h, cn.Accepted)
	}
	for _, r := range st.Requests {
		seq, ok := seqOf(h, r.RequestID)
		if !ok {
			continue
		}
		a := serverAttempt{
			RequestID: r.RequestID, Seq: seq, Attempt: r.Attempt, Arrived: offset(h, r.Arrived), Finished: -1,
			Status: r.Status, Method: r.Method, Fault: r.Fault, OrderID: r.OrderID, ConnID: r.ConnID,
		}
		if !r.Finished.IsZero() {
			a.Finished = offset(h, r.Finished)
		}
		a.RetryAfter = retryAfterOf(r)
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b serverAttempt) int { return cmp.Compare(a.Arrived, b.Arrived) })
	for i := range out {
		out[i].Reused = used[out[i].ConnID]
		used[out[i].ConnID] = true
		out[i].ConnAccepted = -1
		if at, ok := accepted[out[i].ConnID]; ok {
			out[i].ConnAccepted = at
		}
	}
	return out, true
}

// seqOf parses the call number out of a request id of this run.
func seqOf(h *harness.History, requestID string) (uint32, bool) {
	rest, ok := strings.CutPrefix(requestID, h.RequestIDPrefix+"-")
	if !ok || h.RequestIDPrefix == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	return uint32(n), err == nil
}

// bySeq groups attempts by call number, each group in arrival order.
func bySeq(as []serverAttempt) map[uint32][]serverAttempt {
	out := make(map[uint32][]serverAttempt)
	for _, a := range as {
		out[a.Seq] = append(out[a.Seq], a)
	}
	return out
}

// sortedSeqs returns the keys of m in ascending order, so that verdicts
// name the same first offender on every judgement.
func sortedSeqs[V any](m map[uint32]V) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// servicesOrAll returns []string{service} or, when empty, every service of the run.
func servicesOrAll(h *harness.History, service string) []string {
	if service != "" {
		return []string{service}
	}
	return h.Services
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// callName names a call for a reason: service, op, request id, start.
func callName(h *harness.History, c harness.CallRecord) string {
	return fmt.Sprintf("%s %s (request id %s, started %s)", c.Service, c.Op, h.RequestID(c.Seq), harness.FormatDuration(time.Duration(c.Start)))
}

// retryAfterOf is the wait r's Retry-After asked for: its seconds, or its
// HTTP-date less the time the server answered; 0 when there is none (or
// the date is past).
func retryAfterOf(r fakeservers.RequestRecord) time.Duration {
	if r.RetryAfter == "" {
		return 0
	}
	if n, err := strconv.Atoi(r.RetryAfter); err == nil {
		return time.Duration(max(n, 0)) * time.Second
	}
	if t, err := http.ParseTime(r.RetryAfter); err == nil {
		sent := cmp.Or(r.Finished, r.Arrived)
		if t.After(sent) {
			return t.Sub(sent)
		}
	}
	return 0
}
