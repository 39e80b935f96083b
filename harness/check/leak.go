package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// Leaks are the three leak checks with their default bounds.
func Leaks() []harness.Check {
	return []harness.Check{GoroutineLeak{}, FDLeak{}, ServerConnLeak{}}
}

// GoroutineLeak fails when goroutines that were not there at the
// baseline, and are not the environment's, still run after teardown, or
// ran until the servers closed idle connections the client held beyond its
// declared pool (it would never have ended them itself), or when the run
// was stopped at the goroutine ceiling (harness.EarlyStop).
type GoroutineLeak struct{}

func (GoroutineLeak) ID() string { return IDLeakGoroutines }

func (c GoroutineLeak) Judge(h *harness.History) harness.Verdict {
	return withEarlyStop(c.judge(h), h, harness.ResourceGoroutines)
}

func (c GoroutineLeak) judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "goroutines")
	if ps := h.Leaks.Processes; len(ps) > 0 {
		return v.NotApplicable(fmt.Sprintf("the client runs in a child process (%s): it has no goroutines in this process; its threads, file descriptors and sockets are judged by %s",
			describeProcesses(ps), IDLeakFDs))
	}
	if !h.Leaks.GoroutinesMeasured {
		return v.NotApplicable("goroutines were not measured after teardown")
	}
	if es := h.StoppedEarly; es != nil && es.Resource == harness.ResourceGoroutines {
		return v.Fail(float64(es.Above), 0, fmt.Sprintf("%s; after teardown %d client goroutines still running", stoppedAt(es, "goroutines"), h.Leaks.Leaked))
	}
	if h.Leaks.Leaked == 0 {
		if b, beyond := h.Leaks.BeforeIdleClose, h.Leaks.BeyondPool(); b != nil && beyond > 0 && b.Goroutines > 0 {
			return v.Fail(float64(b.Goroutines), 0, fmt.Sprintf("%d client goroutines still running after teardown, which ended only when the servers closed the %d idle connections the client held beyond its declared pool (%s): the client would never have ended them",
				b.Goroutines, beyond, beyondPoolHint))
		}
		return v.Pass(0, 0, "no client goroutine left running after teardown"+idlePoolNote(h))
	}
	how := ""
	if h.Leaks.LeakFinder == harness.LeakFinderLabels {
		how = " (started during the run, found by its label)"
	}
	return v.Fail(float64(h.Leaks.Leaked), 0, fmt.Sprintf("%d client goroutines still running after teardown%s, e.g. %s",
		h.Leaks.Leaked, how, describeLeaked(h.Leaks.LeakedGoroutines)))
}

// describeLeaked names the most common kinds of leaked goroutine.
func describeLeaked(gs []harness.LeakedGoroutine) string {
	type key struct{ entry, top, state string }
	counts := map[key]int{}
	for _, g := range gs {
		state, _, _ := strings.Cut(g.State, ",")
		counts[key{g.Entry, g.Top, state}] += max(g.Count, 1)
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i].entry < keys[j].entry
	})
	var parts []string
	for i, k := range keys {
		if i == 3 {
			break
		}
		s := fmt.Sprintf("%d x %s", counts[k], k.entry)
		if k.top != k.entry {
			s += " blocked in " + k.top
		}
		if k.state != "" {
			s += " [" + k.state + "]"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "(no stacks kept)"
	}
	return strings.Join(parts, "; ")
}

// FDLeak fails when the process holds more file descriptors after
// teardown than at the baseline, beyond a small tolerance, or held them
// until the servers closed idle connections the client held beyond its
// declared pool, or when the run was stopped at the descriptor ceiling
// (harness.EarlyStop). Tolerance 0 uses the tolerance recorded in the
// history (WithFDTolerance). For a client in a child process (a driver)
// it judges that process instead: its file descriptors (sockets included)
// and its threads after idle close against those it had before its first
// call.
type FDLeak struct {
	Tolerance int `json:"tolerance,omitempty"`
}

func (FDLeak) ID() string { return IDLeakFDs }

func (c FDLeak) Judge(h *harness.History) harness.Verdict {
	return withEarlyStop(c.judge(h), h, harness.ResourceFDs)
}

func (c FDLeak) judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "fds")
	tol := h.Leaks.FDTolerance
	if c.Tolerance > 0 {
		tol = c.Tolerance
	}
	if len(h.Leaks.Processes) > 0 {
		return judgeProcesses(v, h.Leaks.Processes, tol, h.Leaks.ThreadTolerance)
	}
	if !h.Leaks.FDsMeasured {
		return v.NotApplicable("open file descriptors cannot be counted here (no /proc/self/fd)")
	}
	extra := h.Leaks.FDAfter - h.Leaks.FDBaseline
	if es := h.StoppedEarly; es != nil && es.Resource == harness.ResourceFDs {
		return v.Fail(float64(es.Above), float64(tol), fmt.Sprintf("%s; after teardown %d above (%d vs %d)",
			stoppedAt(es, "open file descriptors"), extra, h.Leaks.FDAfter, h.Leaks.FDBaseline))
	}
	if extra > tol {
		return v.Fail(float64(extra), float64(tol), fmt.Sprintf("%d more open file descriptors after teardown than at the baseline (%d vs %d): sockets or files the client never closed",
			extra, h.Leaks.FDAfter, h.Leaks.FDBaseline))
	}
	if b, beyond := h.Leaks.BeforeIdleClose, h.Leaks.BeyondPool(); b != nil && b.FDsMeasured && beyond > 0 && b.FDs-h.Leaks.FDBaseline > tol {
		before := b.FDs - h.Leaks.FDBaseline
		return v.Fail(float64(before), float64(tol), fmt.Sprintf("%d more open file descriptors after teardown than at the baseline (%d vs %d), released only when the servers closed the %d idle connections the client held beyond its declared pool (%s): the client would never have closed them",
			before, b.FDs, h.Leaks.FDBaseline, beyond, beyondPoolHint))
	}
	return v.Pass(float64(extra), float64(tol), fmt.Sprintf("%d open file descriptors after teardown, %d at the baseline%s", h.Leaks.FDAfter, h.Leaks.FDBaseline, idlePoolNote(h)))
}

// judgeProcesses judges the child processes a driver's client ran in: the
// worst growth of file descriptors, then of threads, over their baseline.
func judgeProcesses(v harness.Verdict, ps []harness.ProcessLeaks, fdTol, threadTol int) harness.Verdict {
	var (
		fdWorst, threadWorst *harness.ProcessLeaks
		unmeasured           []string
	)
	for i := range ps {
		p := &ps[i]
		if !p.Measured {
			unmeasured = append(unmeasured, fmt.Sprintf("%s: %s", describeProcess(*p), p.Err))
			continue
		}
		if fdWorst == nil || p.After.FDs-p.Before.FDs > fdWorst.After.FDs-fdWorst.Before.FDs {
			fdWorst = p
		}
		if threadWorst == nil || p.After.Threads-p.Before.Threads > threadWorst.After.Threads-threadWorst.Before.Threads {
			threadWorst = p
		}
	}
	if fdWorst == nil {
		return v.NotApplicable("the driver's process could not be measured after idle close (" + strings.Join(unmeasured, "; ") + ")")
	}
	fdExtra := fdWorst.After.FDs - fdWorst.Before.FDs
	if fdExtra > fdTol {
		return v.Fail(float64(fdExtra), float64(fdTol), fmt.Sprintf("the driver's process (%s) holds %d more open file descriptors after idle close than before its first call (%d vs %d, of which sockets %d vs %d): connections or files the client never closed",
			describeProcess(*fdWorst), fdExtra, fdWorst.After.FDs, fdWorst.Before.FDs, fdWorst.After.Sockets, fdWorst.Before.Sockets))
	}
	threadExtra := threadWorst.After.Threads - threadWorst.Before.Threads
	if threadExtra > threadTol {
		v.Unit = "threads"
		return v.Fail(float64(threadExtra), float64(threadTol), fmt.Sprintf("the driver's process (%s) holds %d more threads after idle close than before its first call (%d vs %d): threads the client starts per call or per connection and never ends",
			describeProcess(*threadWorst), threadExtra, threadWorst.After.Threads, threadWorst.Before.Threads))
	}
	reason := fmt.Sprintf("the driver's process (%s) holds %d open file descriptors (%d sockets) and %d threads after idle close, %d (%d) and %d before its first call",
		describeProcess(*fdWorst), fdWorst.After.FDs, fdWorst.After.Sockets, fdWorst.After.Threads, fdWorst.Before.FDs, fdWorst.Before.Sockets, fdWorst.Before.Threads)
	if len(unmeasured) > 0 {
		reason += " (not measured: " + strings.Join(unmeasured, "; ") + ")"
	}
	return v.Pass(float64(fdExtra), float64(fdTol), reason)
}

// describeProcess names a driver's process as a person recognises it.
func describeProcess(p harness.ProcessLeaks) string {
	name := p.Command
	if p.Client != "" {
		name = p.Client + ", " + name
	}
	return fmt.Sprintf("%s, pid %d", name, p.PID)
}

func describeProcesses(ps []harness.ProcessLeaks) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = describeProcess(p)
	}
	return strings.Join(names, "; ")
}

// ServerConnLeak fails when a service still sees connections the client
// holds after teardown: the client closed its idle connections (when it
// can), the harness waited for the closes to land, and the servers closed
// the idle pool of a client that cannot (see harness.ServerConnsAfter).
type ServerConnLeak struct{}

func (ServerConnLeak) ID() string { return IDLeakServerConns }

func (c ServerConnLeak) Judge(h *harness.History) harness.Verdict {
	return withEarlyStop(c.judge(h), h, "")
}

func (c ServerConnLeak) judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "connections")
	var (
		open     int
		measured int
		worst    []string
		missing  []string
		detailed = true
	)
	for _, name := range h.Services {
		sc, ok := h.Leaks.ServerConns[name]
		if !ok || !sc.Available {
			missing = append(missing, name)
			continue
		}
		measured++
		open += sc.Open
		if sc.Open > 0 {
			worst = append(worst, fmt.Sprintf("%s %d", name, sc.Open))
			detailed = detailed && len(sc.Held) > 0
		}
	}
	if measured == 0 {
		return v.NotApplicable("no server-side truth: the servers' open connections could not be read; give the environment the fake services' admin URLs (POOLPROOF_ADMIN_<SERVICE>)")
	}
	if open == 0 {
		reason := "every service saw all connections closed after teardown" + idlePoolNote(h)
		if len(missing) > 0 {
			reason += " (not measured: " + strings.Join(missing, ", ") + ")"
		}
		return v.Pass(0, 0, reason)
	}
	head := fmt.Sprintf("%d connections still open on the servers (%s)", open, strings.Join(worst, ", "))
	if !detailed {
		// The environment could not close the servers' idle connections
		// (or the history predates that): what they carried is unknown.
		return v.Fail(float64(open), 0, fmt.Sprintf("%s %v after the client closed its idle connections: connections kept busy, e.g. by response bodies never read to the end or closed, are never returned to the pool and never closed%s",
			head, h.Leaks.ServerConnsWait.Round(time.Millisecond), idleCloseErrors(h)))
	}
	return v.Fail(float64(open), 0, head+" after teardown, held by the client: "+describeHeld(h))
}

// stoppedAt says that, and why, the run was stopped at a ceiling.
func stoppedAt(es *harness.EarlyStop, what string) string {
	return fmt.Sprintf("the run was stopped at the ceiling after %v and %d calls: %d %s above the baseline (ceiling %d); the client piles them up",
		es.At.Round(time.Millisecond), es.Calls, es.Above, what, es.Ceiling)
}

// withEarlyStop ends v's reason by saying that the run was stopped early
// at a ceiling, unless it was own's ceiling, which the reason is about.
func withEarlyStop(v harness.Verdict, h *harness.History, own harness.Resource) harness.Verdict {
	if es := h.StoppedEarly; es != nil && es.Resource != own {
		v.Reason += fmt.Sprintf(" (the run was stopped early at the %s ceiling after %v and %d calls: %d above the baseline, ceiling %d)",
			es.Resource, es.At.Round(time.Millisecond), es.Calls, es.Above, es.Ceiling)
	}
	return v
}

// beyondPoolHint says what idle connections beyond the declared pool are.
const beyondPoolHint = "connections of pools the caller no longer reaches, e.g. a new client per call, which nothing reuses and nothing closes"

// heldHints say, once per reason, what holds a connection that way.
var heldHints = map[harness.HeldReason]string{
	harness.HeldInFlight:    "a request still in flight is a response the client is still reading or gave up on without closing it (e.g. a slow body and no timeout)",
	harness.HeldNotReturned: "an answered connection that outlives CloseIdleConnections was never given back to the pool: a response body never read to the end or closed",
	harness.HeldBeyondPool:  "idle connections beyond the declared pool are " + beyondPoolHint,
}

// describeHeld names, per service, the groups of held connections (why,
// what they last carried, how many requests, how long open), then what
// each reason means.
func describeHeld(h *harness.History) string {
	var parts []string
	var reasons []harness.HeldReason
	for _, name := range h.Services {
		sc := h.Leaks.ServerConns[name]
		groups := slices.Clone(sc.Held)
		slices.SortStableFunc(groups, func(a, b harness.HeldConns) int { return b.Count - a.Count })
		var gs []string
		for i, g := range groups {
			if i == 3 {
				gs = append(gs, fmt.Sprintf("%d more groups", len(groups)-i))
				break
			}
			gs = append(gs, describeHeldGroup(g, h.Profile.For(name).MaxConns, harness.UndeclaredPoolBound(h.Workload)))
			if !slices.Contains(reasons, g.Reason) {
				reasons = append(reasons, g.Reason)
			}
		}
		if len(gs) > 0 {
			parts = append(parts, name+": "+strings.Join(gs, "; "))
		}
	}
	var hints []string
	for _, r := range reasons {
		if hint, ok := heldHints[r]; ok {
			hints = append(hints, hint)
		}
	}
	hint := strings.Join(hints, "; ")
	if hint != "" {
		hint = strings.ToUpper(hint[:1]) + hint[1:]
	}
	return strings.Join(parts, "; ") + ". " + hint
}

// describeHeldGroup describes one group of held connections; declared is
// the service's MaxConns, undeclared the pool bound that stands for it when
// it is 0.
func describeHeldGroup(g harness.HeldConns, declared, undeclared int) string {
	var what string
	switch g.Reason {
	case harness.HeldInFlight:
		what = fmt.Sprintf("%d still serving a request", g.Count)
	case harness.HeldNotReturned:
		what = fmt.Sprintf("%d answered, yet open after the client closed its idle connections", g.Count)
	case harness.HeldBeyondPool:
		if declared > 0 {
			what = fmt.Sprintf("%d idle beyond the declared pool of %d", g.Count, declared)
		} else {
			what = fmt.Sprintf("%d idle beyond the pool of %d (no max_conns declared: twice the callers, plus 2)", g.Count, undeclared)
		}
	default:
		what = fmt.Sprintf("%d %s", g.Count, g.Reason)
	}
	var details []string
	if g.LastRoute != "" {
		details = append(details, "last "+g.LastRoute)
	}
	switch {
	case g.Requests == g.Count && g.Count == 1:
		details = append(details, "1 request")
	case g.Requests == g.Count:
		details = append(details, "1 request each")
	case g.Count == 1:
		details = append(details, fmt.Sprintf("%d requests", g.Requests))
	default:
		details = append(details, fmt.Sprintf("%.1f requests each on average", float64(g.Requests)/float64(g.Count)))
	}
	oldest, newest := g.Oldest.Round(10*time.Millisecond), g.Newest.Round(10*time.Millisecond)
	if oldest == newest {
		details = append(details, fmt.Sprintf("open %v", oldest))
	} else {
		details = append(details, fmt.Sprintf("open %v to %v", newest, oldest))
	}
	return what + " (" + strings.Join(details, ", ") + ")"
}

// idlePoolNote tells, in a passing reason, how many idle pooled
// connections the servers closed for the client, which is not a leak.
func idlePoolNote(h *harness.History) string {
	total := 0
	var per []string
	for _, name := range h.Services {
		if n := h.Leaks.ServerConns[name].IdleClosed; n > 0 {
			total += n
			per = append(per, fmt.Sprintf("%s %d", name, n))
		}
	}
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("; the servers closed %d idle pooled connections the client kept for reuse (%s), which is no leak", total, strings.Join(per, ", "))
}

// idleCloseErrors names the services whose servers could not be asked to
// close their idle connections.
func idleCloseErrors(h *harness.History) string {
	var errs []string
	for _, name := range h.Services {
		if e := h.Leaks.ServerConns[name].IdleCloseErr; e != "" {
			errs = append(errs, name+": "+e)
		}
	}
	if len(errs) == 0 {
		return ""
	}
	return " (the servers could not be asked to close their idle connections: " + strings.Join(errs, "; ") + ")"
}
