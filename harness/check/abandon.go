package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// AbandonedWork fails when a client lets work go on at the server after
// its caller got an answer: a client that returns a timeout (or honours
// the caller's deadline) while the request it sent keeps running, e.g. on
// a detached context, lets the upstream's concurrency grow with every call
// given up, past any pool it declares, and its goroutines with it.
//
// It is judged on server truth alone. A request is in flight at the server
// from its arrival until it finished (or the truth was read); it is
// orphaned from Grace after its call returned until then: a correct
// client cancels it when the call ends, which the server sees within
// milliseconds (Grace covers the cancel crossing the proxy on a loaded
// machine, where on HTTP/2 a cancelled stream was seen to linger ~100ms). The check fails when, at some instant, the server ran more
// requests than the declared bound (MaxInFlight; on HTTP/1.1 MaxConns;
// else UndeclaredPoolBound) plus a margin (a quarter of it, at least
// MarginMin) and more than the margin of them were orphans: the excess is
// work nobody waits for. A client over its bound with no orphans is
// pool.bound's. It applies only when calls ended while their request was
// still unanswered (or not yet arrived) at the server: a slow upstream and
// callers, or a timeout, that give up on it. Measured is the most requests
// in flight at an instant when more than the margin were orphaned (0 when
// never), against bound + margin.
type AbandonedWork struct {
	Service   string        `json:"service,omitempty"`    // "" = every service of the run
	Grace     time.Duration `json:"grace,omitempty"`      // default 500ms
	MarginMin int           `json:"margin_min,omitempty"` // default 4
}

func (AbandonedWork) ID() string { return IDAbandonedWork }

// minAbandonEvidence is the fewest calls that must have ended with their
// request unanswered at the server for the check to judge a service.
const minAbandonEvidence = 10

// flightInstant is what the server ran at one instant.
type flightInstant struct {
	service  string
	at       time.Duration
	inFlight int
	orphans  int
}

func (c AbandonedWork) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "requests in flight")
	grace := cmp.Or(c.Grace, 500*time.Millisecond)
	var (
		judged, notJudged []string
		peak, orphaned    flightInstant // the most in flight; the most orphaned
		worst             flightInstant // the most in flight while more than the margin were orphaned
		worstBound        int
		gaveUp            int
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		as, ok := serverAttempts(h, svc)
		if !ok {
			notJudged = append(notJudged, svc+" has no server truth")
			continue
		}
		ct := contractFor(h, svc)
		bound := ct.MaxInFlight
		if bound == 0 && h.Protocol != harness.ProtocolHTTP2 {
			bound = ct.MaxConns
		}
		bound = cmp.Or(bound, harness.UndeclaredPoolBound(h.Workload))
		margin := max(cmp.Or(c.MarginMin, 4), bound/4)
		instants, evidence := serverFlight(h, svc, as, grace)
		if evidence < minAbandonEvidence {
			notJudged = append(notJudged, fmt.Sprintf("%s: %d calls ended while their request was unanswered at the server (need %d)", svc, evidence, minAbandonEvidence))
			continue
		}
		judged = append(judged, svc)
		gaveUp += evidence
		if worstBound == 0 {
			worstBound = bound + margin
		}
		for _, in := range instants {
			if in.inFlight > peak.inFlight {
				peak = in
			}
			if in.orphans > orphaned.orphans {
				orphaned = in
			}
			if in.orphans > margin && in.inFlight-(bound+margin) > worst.inFlight-worstBound {
				worst, worstBound = in, bound+margin
			}
		}
	}
	if len(judged) == 0 {
		return v.NotApplicable(strings.Join(notJudged, "; ") + ": no caller gave up on a request the server was still working on; run a slow upstream that callers give up on (abandoned-work)")
	}
	if worst.inFlight > worstBound {
		return v.Fail(float64(worst.inFlight), float64(worstBound), fmt.Sprintf("at %s %s was running %d requests at once, more than the declared bound + margin of %d, and %d of them belonged to calls that had returned to their caller over %s before (%d calls of %v ended while their request was unanswered): "+
			"cancel the request when the call ends (pass the caller's context down, never a detached one), or the upstream's load and the client's goroutines grow with every call given up",
			harness.FormatDuration(worst.at), worst.service, worst.inFlight, worstBound, worst.orphans, harness.FormatDuration(grace), gaveUp, judged))
	}
	return v.Pass(float64(worst.inFlight), float64(worstBound), fmt.Sprintf("%d calls of %v ended while their request was unanswered at the server, and their work ended with them: at most %d requests orphaned at once (%s, at %s), at most %d in flight (%s, at %s); measured is the most in flight while more than the margin were orphaned, against the declared bound + margin",
		gaveUp, judged, orphaned.orphans, orphaned.service, harness.FormatDuration(orphaned.at), peak.inFlight, peak.service, harness.FormatDuration(peak.at)))
}

// serverFlight sweeps the requests as of service: the count in flight and
// orphaned (still running grace after their call returned) at every
// instant either changes, and how many calls ended while a request of
// theirs was unanswered at the server.
func serverFlight(h *harness.History, service string, as []serverAttempt, grace time.Duration) ([]flightInstant, int) {
	id := harness.ServiceIDOf(service)
	ended := map[uint32]harness.CallRecord{}
	for _, c := range h.Calls {
		if c.Service == id {
			ended[c.Seq] = c
		}
	}
	observed := h.End()
	if st, ok := requestTruth(h, service); ok && !st.Now.IsZero() {
		observed = max(observed, offset(h, st.Now))
	}
	type edge struct {
		at              time.Duration
		flight, orphans int
	}
	var edges []edge
	evidence := map[uint32]bool{}
	for _, a := range as {
		end := a.Finished
		if end < 0 {
			end = observed
		}
		edges = append(edges, edge{a.Arrived, 1, 0}, edge{end, -1, 0})
		call, ok := ended[a.Seq]
		if !ok {
			continue
		}
		callEnd := time.Duration(call.End)
		// Unanswered when the call ended: still running, or not even
		// arrived yet (a dial slower than the caller's patience).
		if !call.OK() && (a.Finished < 0 || a.Finished >= callEnd || a.Status == 0) {
			evidence[a.Seq] = true
		}
		if from := max(a.Arrived, callEnd+grace); from < end {
			edges = append(edges, edge{from, 0, 1}, edge{end, 0, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.flight+a.orphans, b.flight+b.orphans) // ends before starts at one instant
	})
	var out []flightInstant
	n, o := 0, 0
	for i, e := range edges {
		n, o = n+e.flight, o+e.orphans
		if i+1 < len(edges) && edges[i+1].at == e.at {
			continue
		}
		out = append(out, flightInstant{service: service, at: e.at, inFlight: n, orphans: o})
	}
	return out, len(evidence)
}
