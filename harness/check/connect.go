package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// ConnectTimeout fails when a call whose connections never completed took
// longer to fail than the declared Contract.ConnectTimeout allows: a client
// with no (or a long) dial or TLS-handshake timeout leaves its callers
// waiting out the whole request timeout, or forever, whenever a backend
// accepts TCP and then says nothing (a hung process, a full accept queue
// behind a load balancer, a middlebox eating the handshake).
//
// It is judged in connect stalls: from when a service's proxy swallows
// every byte from the client (an upstream timeout toxic) and has dropped
// the connections opened before, until the stall is removed. Every call
// then needs a new connection that never becomes usable. The calls judged
// are those that started in a stall and failed without any request of
// theirs reaching the server (server truth: no request with their
// X-Request-ID arrived). Each must fail within its bound: MaxAttempts x
// ConnectTimeout plus the declared backoff between the attempts and the
// pool wait, never more than RequestTimeout, plus a margin (half the bound,
// at least MarginMin) for a loaded machine. It needs MinCalls such calls.
// Measured is the longest, against its bound.
type ConnectTimeout struct {
	Service   string        `json:"service,omitempty"`    // "" = every service of the run
	MarginMin time.Duration `json:"margin_min,omitempty"` // default 500ms
	MinCalls  int           `json:"min_calls,omitempty"`  // default 10
}

func (ConnectTimeout) ID() string { return IDTimeoutConnect }

// connectBound is how long a call whose connections never complete may
// take to fail under ct, before the margin, and whether the request
// timeout cut it.
func connectBound(ct harness.Contract) (bound time.Duration, capped bool) {
	attempts := max(1, ct.MaxAttempts)
	bound = time.Duration(attempts)*ct.ConnectTimeout + ct.PoolWait
	if ct.BackoffBase > 0 {
		for n := 1; n < attempts; n++ {
			bound += backoffCeiling(ct, n)
		}
	}
	if ct.RequestTimeout > 0 && bound > ct.RequestTimeout {
		return ct.RequestTimeout, true
	}
	return bound, false
}

func (c ConnectTimeout) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	minCalls := cmp.Or(c.MinCalls, 10)
	var (
		judged, notJudged []string
		worst             harness.CallRecord
		worstBound        time.Duration
		over, n           int
		how               []string
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		ct := contractFor(h, svc)
		if ct.ConnectTimeout <= 0 {
			notJudged = append(notJudged, svc+" declares no connect_timeout")
			continue
		}
		stalls := connectStalls(h, svc)
		if len(stalls) == 0 {
			notJudged = append(notJudged, svc+" had no connect stall")
			continue
		}
		as, ok := serverAttempts(h, svc)
		if !ok {
			notJudged = append(notJudged, svc+" has no server truth")
			continue
		}
		arrived := make(map[uint32]bool, len(as))
		for _, a := range as {
			arrived[a.Seq] = true
		}
		var failed []harness.CallRecord
		for _, cl := range serviceCalls(h, svc, 0, h.End()+1) {
			if cl.OK() || cl.Class == harness.ClassCanceled || arrived[cl.Seq] || !inAny(stalls, time.Duration(cl.Start)) {
				continue
			}
			failed = append(failed, cl)
		}
		if len(failed) < minCalls {
			notJudged = append(notJudged, fmt.Sprintf("%s: %d calls in a connect stall failed without reaching the server (need %d)", svc, len(failed), minCalls))
			continue
		}
		raw, capped := connectBound(ct)
		bound := raw + max(raw/2, cmp.Or(c.MarginMin, 500*time.Millisecond))
		from := fmt.Sprintf("%s: %d x connect_timeout %s", svc, max(1, ct.MaxAttempts), harness.FormatDuration(ct.ConnectTimeout))
		if capped {
			from = fmt.Sprintf("%s: request_timeout %s, shorter than %s", svc, harness.FormatDuration(ct.RequestTimeout), strings.TrimPrefix(from, svc+": "))
		}
		how = append(how, fmt.Sprintf("%s + margin = %s", from, harness.FormatDuration(bound)))
		judged = append(judged, svc)
		for _, cl := range failed {
			n++
			if cl.Latency() > bound {
				over++
			}
			if worstBound == 0 || float64(cl.Latency())/float64(bound) > float64(worst.Latency())/float64(worstBound) {
				worst, worstBound = cl, bound
			}
		}
	}
	if len(judged) == 0 {
		return v.NotApplicable(strings.Join(notJudged, "; ") + ": declare connect_timeout and run a scenario whose connections never complete (connect-never-completes)")
	}
	what := fmt.Sprintf("longest %s failed after %s (%s)", callName(h, worst), harness.FormatDuration(worst.Latency()), strings.Join(how, "; "))
	if over == 0 {
		return v.Pass(ms(worst.Latency()), ms(worstBound), fmt.Sprintf("all %d calls to %v that started while connections never completed failed within the connect bound; %s", n, judged, what))
	}
	return v.Fail(ms(worst.Latency()), ms(worstBound), fmt.Sprintf("%d of %d calls to %v that started while connections never completed outlived the connect bound; %s: give the dial and the TLS handshake timeouts that add up to the declared connect timeout",
		over, n, judged, what))
}

// connectStalls are the spans in which every new connection to service
// hung before it could carry a request: an upstream timeout toxic held
// every byte from the client, after the proxy had dropped the connections
// opened before it. A stall starts at the later of the two and ends when
// the toxic goes (or the run ends).
func connectStalls(h *harness.History, service string) []harness.Window {
	steps := make([]harness.StepRecord, 0, len(h.Steps))
	for _, s := range h.Steps {
		if s.Step.Action.Service == service && s.Applied() {
			steps = append(steps, s)
		}
	}
	slices.SortStableFunc(steps, func(a, b harness.StepRecord) int { return cmp.Compare(a.Started, b.Started) })
	var (
		out     []harness.Window
		stalled = map[string]bool{}
		dropped bool // the proxy dropped its connections while a stall was on
		cur     *harness.Window
	)
	for _, s := range steps {
		a := s.Step.Action
		switch a.Kind {
		case harness.ActionAddToxic:
			if t := a.Toxic; t != nil && t.Type == harness.ToxicTimeout && t.Stream == harness.Upstream {
				stalled[cmp.Or(t.Name, t.Type+"_"+t.Stream)] = true
			}
		case harness.ActionRemoveToxic:
			if stalled[a.ToxicName] {
				delete(stalled, a.ToxicName)
			} else {
				clear(stalled) // as FaultWindows: an unknown name ends every toxic
			}
		case harness.ActionDisableProxy:
			dropped = dropped || len(stalled) > 0
		default:
			continue
		}
		if len(stalled) == 0 {
			dropped = false
		}
		switch on := len(stalled) > 0 && dropped; {
		case on && cur == nil:
			cur = &harness.Window{Service: service, Start: s.Started}
		case !on && cur != nil:
			cur.End, cur.Closed = s.Started, true
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		cur.End = max(h.End(), cur.Start)
		out = append(out, *cur)
	}
	return out
}
