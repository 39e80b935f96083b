package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// ConnLifetime fails when a request starts, at the server, on a connection
// older than the declared Contract.MaxConnLifetime plus a margin: a client
// whose connections live forever keeps its traffic on the backends it
// first reached when a load balancer rotates them. The age is the server's
// (accept to the request's arrival), so a request that started just before
// the lifetime may finish past it; the margin (half the lifetime, at least
// MarginMin) covers that and a loaded machine. The check can only fail when
// the service's traffic spans longer than lifetime + margin; a shorter run
// is not applicable and says so (a soak run judges a long lifetime).
// Measured is the oldest connection a request started on, against the bound.
type ConnLifetime struct {
	Service   string        `json:"service,omitempty"`    // "" = every service of the run
	MarginMin time.Duration `json:"margin_min,omitempty"` // default 1s
}

func (ConnLifetime) ID() string { return IDPoolLifetime }

func (c ConnLifetime) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	var (
		judged, notJudged []string
		worst             *connUse
		worstBound        time.Duration
		over, requests    int
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		lifetime := contractFor(h, svc).MaxConnLifetime
		if lifetime <= 0 {
			notJudged = append(notJudged, fmt.Sprintf("%s declares no max_conn_lifetime", svc))
			continue
		}
		conns, _, ok := connTimelines(h, svc)
		if !ok {
			notJudged = append(notJudged, fmt.Sprintf("%s has no server truth", svc))
			continue
		}
		bound := lifetime + max(lifetime/2, cmp.Or(c.MarginMin, time.Second))
		first, last := time.Duration(-1), time.Duration(-1)
		for i := range conns {
			for _, u := range conns[i].uses {
				requests++
				if first < 0 || u.arrived < first {
					first = u.arrived
				}
				last = max(last, u.arrived)
				if u.age > bound {
					over++
				}
				if worst == nil || float64(u.age)/float64(bound) > float64(worst.age)/float64(worstBound) {
					worst, worstBound = &u, bound
				}
			}
		}
		if over == 0 && (first < 0 || last-first <= bound) {
			notJudged = append(notJudged, fmt.Sprintf("%s's traffic spans %s, no longer than max_conn_lifetime %s + margin = %s, so no connection could outlive it (a longer run, e.g. soak, judges it)",
				svc, harness.FormatDuration(max(0, last-first)), harness.FormatDuration(lifetime), harness.FormatDuration(bound)))
			continue
		}
		judged = append(judged, svc)
	}
	if len(judged) == 0 {
		return v.NotApplicable(strings.Join(notJudged, "; ") + ": declare max_conn_lifetime, shorter than the run, to have the client held to it")
	}
	what := fmt.Sprintf("oldest: %s connection %d, accepted at %s, carried a request arriving at %s, %s old (bound %s)",
		worst.service, worst.conn, harness.FormatDuration(worst.accepted), harness.FormatDuration(worst.arrived), harness.FormatDuration(worst.age), harness.FormatDuration(worstBound))
	if over == 0 {
		return v.Pass(ms(worst.age), ms(worstBound), fmt.Sprintf("all %d requests to %v started on connections younger than max_conn_lifetime + margin; %s", requests, judged, what))
	}
	return v.Fail(ms(worst.age), ms(worstBound), fmt.Sprintf("%d of %d requests to %v started on connections older than max_conn_lifetime + margin; %s: retire a connection once it reaches the declared lifetime (close it when idle, refuse new requests on it when busy)",
		over, requests, judged, what))
}

// IdleTimeout fails when a connection stayed open with no request on it for
// longer than the declared Contract.IdleTimeout plus a margin (half the
// timeout, at least MarginMin), as the server saw it: from the end of its
// last request (or its accept) until its next request arrived, it was
// closed, or the run ended. A client that keeps idle connections past its
// idle timeout holds server slots and meets connections a middlebox or the
// server has silently dropped. The check fails on any such connection; it
// passes only when the service's traffic paused for longer than the bound
// at least once (so a client that never closes an idle connection would
// have failed), and is not applicable otherwise. Measured is the longest
// idle stretch of a connection, against the bound.
type IdleTimeout struct {
	Service   string        `json:"service,omitempty"`    // "" = every service of the run
	MarginMin time.Duration `json:"margin_min,omitempty"` // default 700ms
}

func (IdleTimeout) ID() string { return IDPoolIdleTimeout }

func (c IdleTimeout) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "ms")
	var (
		judged, notJudged []string
		worst             idleGap
		worstBound        time.Duration
		over, conns       int
	)
	for _, svc := range servicesOrAll(h, c.Service) {
		idle := contractFor(h, svc).IdleTimeout
		if idle <= 0 {
			notJudged = append(notJudged, fmt.Sprintf("%s declares no idle_timeout", svc))
			continue
		}
		tl, observed, ok := connTimelines(h, svc)
		if !ok {
			notJudged = append(notJudged, fmt.Sprintf("%s has no server truth", svc))
			continue
		}
		bound := idle + max(idle/2, cmp.Or(c.MarginMin, 700*time.Millisecond))
		svcOver := 0
		for i := range tl {
			conns++
			for _, g := range tl[i].idle {
				if g.length() > bound {
					svcOver++
				}
				if worstBound == 0 || float64(g.length())/float64(bound) > float64(worst.length())/float64(worstBound) {
					worst, worstBound = g, bound
				}
			}
		}
		over += svcOver
		if quiet := longestQuiet(tl, observed); svcOver == 0 && quiet <= bound {
			notJudged = append(notJudged, fmt.Sprintf("%s's traffic never paused for longer than idle_timeout %s + margin = %s (longest pause %s), so a client that never closes an idle connection would pass",
				svc, harness.FormatDuration(idle), harness.FormatDuration(bound), harness.FormatDuration(quiet)))
			continue
		}
		judged = append(judged, svc)
	}
	if len(judged) == 0 {
		return v.NotApplicable(strings.Join(notJudged, "; ") + ": declare idle_timeout and run a scenario whose traffic pauses for longer (pool-idle-lifetime)")
	}
	what := "no connection was ever idle"
	if worstBound > 0 {
		what = fmt.Sprintf("longest idle: %s connection %d, idle from %s until %s (%s; bound %s)", worst.service, worst.conn,
			harness.FormatDuration(worst.from), worst.ended(), harness.FormatDuration(worst.length()), harness.FormatDuration(worstBound))
	}
	if over == 0 {
		return v.Pass(ms(worst.length()), ms(worstBound), fmt.Sprintf("no connection of %d to %v stayed idle past idle_timeout + margin; %s", conns, judged, what))
	}
	return v.Fail(ms(worst.length()), ms(worstBound), fmt.Sprintf("%d idle stretches on connections to %v outlasted idle_timeout + margin; %s: close a connection once it has carried no request for the declared idle timeout",
		over, judged, what))
}

// connUse is one request's arrival on a connection, with the connection's age then.
type connUse struct {
	service           string
	conn              uint64
	accepted, arrived time.Duration
	age               time.Duration
}

// idleGap is a stretch in which a connection was open with no request on it.
type idleGap struct {
	service  string
	conn     uint64
	from, to time.Duration
	end      string // what ended it
}

func (g idleGap) length() time.Duration { return g.to - g.from }

func (g idleGap) ended() string { return harness.FormatDuration(g.to) + " (" + g.end + ")" }

// connTimeline is what the server saw of one connection: the requests it
// carried and the stretches it sat idle in, within the workload (from its
// start until the servers were observed after it).
type connTimeline struct {
	uses []connUse
	busy [][2]time.Duration // merged [arrival, finish) of its requests
	idle []idleGap
}

// connTimelines returns the timeline of every connection service accepted,
// and when the server truth was taken (the end of the idle stretches of
// connections still open then). Every request on a connection counts as
// busy, this run's or not; one the server never finished holds it busy
// until it closed.
func connTimelines(h *harness.History, service string) ([]connTimeline, time.Duration, bool) {
	st, ok := requestTruth(h, service)
	if !ok {
		return nil, 0, false
	}
	observed := h.End()
	if !st.Now.IsZero() {
		observed = max(observed, offset(h, st.Now))
	}
	type span = [2]time.Duration
	closedAt := make(map[uint64]time.Duration, len(st.Connections))
	for _, cn := range st.Connections {
		closedAt[cn.ID] = observed
		if !cn.Closed.IsZero() {
			closedAt[cn.ID] = min(observed, offset(h, cn.Closed))
		}
	}
	byConn := map[uint64][]span{}
	arrivals := map[uint64][]time.Duration{}
	for _, r := range st.Requests {
		a, f := offset(h, r.Arrived), closedAt[r.ConnID] // never finished: busy until its connection closed
		if !r.Finished.IsZero() {
			f = offset(h, r.Finished)
		}
		byConn[r.ConnID] = append(byConn[r.ConnID], span{a, f})
		arrivals[r.ConnID] = append(arrivals[r.ConnID], a)
	}
	out := make([]connTimeline, 0, len(st.Connections))
	for _, cn := range st.Connections {
		accepted := offset(h, cn.Accepted)
		closed, closedHow := closedAt[cn.ID], "still open when the run ended"
		if !cn.Closed.IsZero() {
			closedHow = "closed"
		}
		var tl connTimeline
		for _, a := range arrivals[cn.ID] {
			tl.uses = append(tl.uses, connUse{service: service, conn: cn.ID, accepted: accepted, arrived: a, age: a - accepted})
		}
		spans := byConn[cn.ID]
		slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a[0], b[0]) })
		// Idle time before the workload started is the harness's, not the
		// client's: stretches are counted from the start on.
		cursor := max(accepted, 0)
		for _, s := range spans {
			if s[0] > cursor {
				tl.idle = append(tl.idle, idleGap{service: service, conn: cn.ID, from: cursor, to: s[0], end: "a request arrived on it"})
			}
			if n := len(tl.busy); n > 0 && s[0] <= tl.busy[n-1][1] {
				tl.busy[n-1][1] = max(tl.busy[n-1][1], s[1])
			} else {
				tl.busy = append(tl.busy, s)
			}
			cursor = max(cursor, s[1])
		}
		if closed > cursor {
			tl.idle = append(tl.idle, idleGap{service: service, conn: cn.ID, from: cursor, to: closed, end: closedHow})
		}
		out = append(out, tl)
	}
	return out, observed, true
}

// longestQuiet is the longest stretch within [0, observed] in which no
// connection of tl carried a request: a pause in the service's traffic.
func longestQuiet(tl []connTimeline, observed time.Duration) time.Duration {
	var busy [][2]time.Duration
	for _, t := range tl {
		busy = append(busy, t.busy...)
	}
	slices.SortFunc(busy, func(a, b [2]time.Duration) int { return cmp.Compare(a[0], b[0]) })
	var longest, cursor time.Duration
	for _, b := range busy {
		if b[0] > cursor {
			longest = max(longest, min(b[0], observed)-cursor)
		}
		cursor = max(cursor, b[1])
	}
	return max(longest, observed-cursor)
}
