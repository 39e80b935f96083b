package check

import (
	"fmt"
	"github.com/poolproof/poolproof/harness"
	"sort"
	"strings"
	"time"
)

// Leaks are the three leak checks with their default bounds.
func Leaks() []harness.Check {
	return []harness.Check{GoroutineLeak{}, FDLeak{}, ServerConnLeak{}}
}

// GoroutineLeak fails when goroutines that were not there at the
// baseline, and are not the environment's, still run after teardown.
type GoroutineLeak struct{}

func (GoroutineLeak) ID() string { return IDLeakGoroutines }

func (c GoroutineLeak) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "goroutines")
	if ps := h.Leaks.Processes; len(ps) > 0 {
		return v.NotApplicable(fmt.Sprintf("the client runs in a child process (%s): it has no goroutines in this process; its threads, file descriptors and sockets are judged by %s",
			describeProcesses(ps), IDLeakFDs))
	}
	if !h.Leaks.GoroutinesMeasured {
		return v.NotApplicable("goroutines were not measured after teardown")
	}
	if h.Leaks.Leaked == 0 {
		return v.Pass(0, 0, "no client goroutine left running after teardown")
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
// teardown than at the baseline, beyond a small tolerance. Tolerance 0
// uses the tolerance recorded in the history (WithFDTolerance). For a
// client in a child process (a driver) it judges that process instead:
// its file descriptors (sockets included) and its threads after idle
// close against those it had before its first call.
type FDLeak struct {
	Tolerance int `json:"tolerance,omitempty"`
}

func (FDLeak) ID() string { return IDLeakFDs }

func (c FDLeak) Judge(h *harness.History) harness.Verdict {
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
	if extra <= tol {
		return v.Pass(float64(extra), float64(tol), fmt.Sprintf("%d open file descriptors after teardown, %d at the baseline", h.Leaks.FDAfter, h.Leaks.FDBaseline))
	}
	return v.Fail(float64(extra), float64(tol), fmt.Sprintf("%d more open file descriptors after teardown than at the baseline (%d vs %d): sockets or files the client never closed",
		extra, h.Leaks.FDAfter, h.Leaks.FDBaseline))
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

// ServerConnLeak fails when a service still sees open connections
// after the client closed its idle connections and the harness waited for
// the closes to reach the server.
type ServerConnLeak struct{}

func (ServerConnLeak) ID() string { return IDLeakServerConns }

func (c ServerConnLeak) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "connections")
	var (
		open     int
		measured int
		worst    []string
		missing  []string
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
		}
	}
	if measured == 0 {
		return v.NotApplicable("no server-side truth: the servers' open connections could not be read")
	}
	if open == 0 {
		reason := "every service saw all connections closed after teardown"
		if len(missing) > 0 {
			reason += " (not measured: " + strings.Join(missing, ", ") + ")"
		}
		return v.Pass(0, 0, reason)
	}
	return v.Fail(float64(open), 0, fmt.Sprintf("%d connections still open on the servers (%s) %v after the client closed its idle connections: connections kept busy, e.g. by response bodies never read to the end or closed, are never returned to the pool and never closed",
		open, strings.Join(worst, ", "), h.Leaks.ServerConnsWait.Round(time.Millisecond)))
}
