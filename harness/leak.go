package harness

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/internal/bounded"
	"github.com/poolproof/poolproof/internal/procfd"
)

// maxLeakedKept caps the leaked goroutines (or kinds of them) described in
// the history; the count in LeakRecord.Leaked is always complete.
const maxLeakedKept = 200

// goroutineSettle bounds how long measureLeaks waits for the run's labelled
// goroutines to end after teardown before it counts them as leaked; longer
// than goleak's own retries (~0.5s), so it is never the stricter of the two.
const goroutineSettle = time.Second

// IdleConnCloser is an optional Environment extension: it has the servers
// of one service close every connection with no request in flight (as an
// idle timeout would) and says which it closed and which it left open. It
// is how teardown tells a client's idle pool, which is no leak, from the
// connections the client holds. Without it, or for a service whose servers
// it cannot reach (an error wrapping ErrNoServerTruth), every connection
// still open after teardown counts as held, as the servers cannot say more.
type IdleConnCloser interface {
	CloseIdleConns(ctx context.Context, service string) (fakeservers.IdleClose, error)
}

type leakInputs struct {
	env             Environment
	label           string // the value of runLabel on the run's goroutines
	services        []string
	truthOK         map[string]bool
	closedIdle      map[string]bool // the service's client closed its own idle connections (see closedOwnIdle)
	pool            map[string]int  // the pool per service: Contract.MaxConns, else UndeclaredPoolBound
	baseline        goleak.Option   // goleak.IgnoreCurrent() taken before the client was built
	baseG           int
	fdBase          int
	fdOK            bool
	fdTolerance     int
	threadTolerance int
	reporters       []LeakReporter // the distinct clients that run in a child process
	settle          time.Duration
	observe         time.Duration
}

// measureOutside measures what the client left outside this process on
// in.services: it waits (bounded by settle) for the servers to see the
// client's connections close, reads the child processes of in.reporters
// until they are back at their baseline (bounded by settle too), then has
// the servers close their idle connections and sorts them into the
// client's idle pool and what it held (closeServerIdle).
//
// For a client in a child process it runs after the client's idle close
// and before its Close (see Run): the process's exit would close every
// socket it holds, leaked or not, so its own counts and the servers'
// connections are read while it runs; the servers close idle connections
// last, after the process was measured, so that what the client itself
// leaves open is what is counted.
func measureOutside(ctx context.Context, in leakInputs) LeakRecord {
	rec := LeakRecord{GoroutineBaseline: in.baseG, FDTolerance: in.fdTolerance, FDBaseline: in.fdBase}
	start := time.Now()
	rec.ServerConns = waitServerConns(ctx, in)
	rec.ServerConnsWait = time.Since(start)
	if len(in.reporters) > 0 {
		rec.ThreadTolerance = in.threadTolerance
		rec.Processes = waitProcesses(ctx, in)
	}
	rec.BeforeIdleClose = closeServerIdle(ctx, in, rec.ServerConns)
	return rec
}

// measureLeaks runs after teardown. It measures outside this process
// (measureOutside) the services in.services names, and adds outside, what
// was measured before Close on the services of clients in a child
// process; then waits (bounded by settle) for file descriptors to return
// to baseline, then looks for the client's goroutines still running: first
// those carrying the run's label (cheap, see labelledGoroutines); when none
// is left, goleak decides, reporting every goroutine that is neither the
// baseline's nor the environment's (it retries for ~0.5s itself).
//
// The servers close the idle pool before descriptors and goroutines are
// counted because a client that cannot close its idle connections (one
// with Do alone) keeps a read loop and a socket per pooled connection until
// the peer closes it; that is no leak, and closing from the server side is
// what a server's idle timeout would do. A connection the client really
// holds (a body it never reads) keeps its socket and goroutines whatever
// the server does.
func measureLeaks(ctx context.Context, in leakInputs, outside *LeakRecord) LeakRecord {
	rec := measureOutside(ctx, in)
	if outside != nil {
		for name, sc := range outside.ServerConns {
			rec.ServerConns[name] = sc
		}
		rec.ServerConnsWait += outside.ServerConnsWait
		rec.Processes, rec.ThreadTolerance = outside.Processes, outside.ThreadTolerance
	}

	if in.fdOK {
		deadline := time.Now().Add(in.settle)
		for {
			n, ok := procfd.Count()
			if !ok {
				break
			}
			rec.FDsMeasured, rec.FDAfter = true, n
			if n <= in.fdBase+in.fdTolerance || time.Now().After(deadline) {
				break
			}
			sleepCtx(ctx, 50*time.Millisecond)
		}
	}

	ignores := in.env.GoroutineIgnores()
	rec.GoroutinesMeasured = true
	if n, gs, ok := waitLabelledGoroutines(ctx, in.label, ignores); ok && n > 0 {
		rec.Leaked, rec.LeakedGoroutines, rec.LeakFinder = n, gs, LeakFinderLabels
		return rec
	}
	rec.LeakFinder = LeakFinderGoleak
	if err := goleak.Find(append(goleakIgnores(ignores), in.baseline)...); err != nil {
		rec.Leaked, rec.LeakedGoroutines = parseGoleak(err.Error())
	}
	return rec
}

// waitLabelledGoroutines polls the run's labelled goroutines until none is
// left or goroutineSettle passes; ok is false when the profile could not be
// read (goleak then decides alone).
func waitLabelledGoroutines(ctx context.Context, label string, ignores []string) (int, []LeakedGoroutine, bool) {
	deadline := time.Now().Add(goroutineSettle)
	for {
		n, gs, err := labelledGoroutines(label, ignores)
		if err != nil {
			return 0, nil, false
		}
		if n == 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			return n, gs, true
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// goleakIgnores turns an environment's function names into goleak options.
func goleakIgnores(funcs []string) []goleak.Option {
	opts := make([]goleak.Option, 0, len(funcs))
	for _, f := range funcs {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	return opts
}

// waitServerConns polls every service's open connections until all read
// zero or the settle bound passes. Only the closes of clients that closed
// their idle connections themselves are waited for: a client with Do
// alone closed nothing, so one read is all there is to see.
func waitServerConns(ctx context.Context, in leakInputs) map[string]ServerConnsAfter {
	out := make(map[string]ServerConnsAfter, len(in.services))
	counter, _ := in.env.(ConnectionCounter)
	deadline := time.Now().Add(in.settle)
	for {
		settled := true
		for _, name := range in.services {
			if !in.truthOK[name] {
				out[name] = ServerConnsAfter{Err: ErrNoServerTruth.Error()}
				continue
			}
			octx, cancel := context.WithTimeout(ctx, in.observe)
			var (
				n   int
				err error
			)
			if counter != nil {
				n, err = counter.OpenConnections(octx, name)
			} else {
				st, oerr := in.env.Observe(octx, name)
				n, err = st.OpenConnections, oerr
			}
			cancel()
			if err != nil {
				out[name] = ServerConnsAfter{Err: err.Error()}
				continue
			}
			out[name] = ServerConnsAfter{Available: true, Open: n, ClientClosedIdle: in.closedIdle[name]}
			if n > 0 && in.closedIdle[name] {
				settled = false
			}
		}
		if settled || !time.Now().Before(deadline) || ctx.Err() != nil {
			return out
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

// waitProcesses reads every LeakReporter until its process is back within
// the tolerances of its baseline, cannot be read, or settle passes. Each
// read is bounded by the observe timeout: it is the client's code.
func waitProcesses(ctx context.Context, in leakInputs) []ProcessLeaks {
	out := make([]ProcessLeaks, len(in.reporters))
	deadline := time.Now().Add(in.settle)
	for {
		settled := true
		for i, r := range in.reporters {
			var got ProcessLeaks // written by the call; read only when it returned
			err, abandoned := bounded.Call(ctx, in.observe, 0, func(context.Context) error {
				got = r.ProcessLeaks()
				return nil
			})
			var p ProcessLeaks
			switch {
			case abandoned:
				p = ProcessLeaks{Err: fmt.Sprintf("the client's ProcessLeaks did not return within %v: %v", in.observe, err)}
			case err != nil:
				p = ProcessLeaks{Err: "the client's ProcessLeaks failed: " + err.Error()}
			default:
				p = got
			}
			out[i] = p
			if p.Measured && (p.After.FDs > p.Before.FDs+in.fdTolerance || p.After.Threads > p.Before.Threads+in.threadTolerance) {
				settled = false
			}
		}
		if settled || !time.Now().Before(deadline) || ctx.Err() != nil {
			return out
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

// closeServerIdle has the servers of every service with connections still
// open close the idle ones, and rewrites conns with what that showed: the
// idle pool the servers closed (not a leak) and what the client held. When
// a service's idle connections may outnumber its declared pool, it first
// notes the process's descriptors and the client's goroutines, which those
// extra connections held until the servers closed them; not for the
// clients in a child process (in.reporters), which this process's counts
// say nothing of.
func closeServerIdle(ctx context.Context, in leakInputs, conns map[string]ServerConnsAfter) *HeldBeforeIdleClose {
	closer, ok := in.env.(IdleConnCloser)
	if !ok {
		return nil
	}
	var before *HeldBeforeIdleClose
	for _, name := range in.services {
		if sc := conns[name]; len(in.reporters) == 0 && sc.Available && !sc.ClientClosedIdle && sc.Open > in.pool[name] {
			before = &HeldBeforeIdleClose{Goroutines: -1}
			before.FDs, before.FDsMeasured = procfd.Count()
			if n, _, err := labelledGoroutines(in.label, in.env.GoroutineIgnores()); err == nil {
				before.Goroutines = n
			}
			break
		}
	}
	for _, name := range in.services {
		sc := conns[name]
		if !sc.Available || sc.Open == 0 {
			continue
		}
		res, err := closeIdleSettled(ctx, closer, name, in.observe, in.settle)
		if err != nil {
			sc.IdleCloseErr = err.Error()
			conns[name] = sc
			continue
		}
		sc.IdleClosed, sc.Held, sc.Open = sortIdleClose(res, sc.ClientClosedIdle, in.pool[name])
		conns[name] = sc
	}
	return before
}

// closeIdleSettled has one service's servers close their idle connections,
// then, while some are still serving a request, asks again every 50ms
// until none is or settle passes, and returns every connection closed
// along the way with those still busy at the end. A request the client
// abandoned (its call timed out) may still be in the server's handler at
// teardown, on a connection the client already closed: once the handler
// ends, the server sees the close and the connection is gone, not held.
// One the client really holds (a body it is still sending, a response it
// never reads) stays busy, or turns idle and is closed and sorted then.
func closeIdleSettled(ctx context.Context, closer IdleConnCloser, service string, observe, settle time.Duration) (fakeservers.IdleClose, error) {
	var all fakeservers.IdleClose
	deadline := time.Now().Add(settle)
	for {
		octx, cancel := context.WithTimeout(ctx, observe)
		res, err := closer.CloseIdleConns(octx, service)
		cancel()
		if err != nil {
			if len(all.Closed) > 0 || all.Busy != nil {
				return all, nil // what was seen before stands
			}
			return res, err
		}
		all.Now, all.Busy = res.Now, res.Busy
		all.Closed = append(all.Closed, res.Closed...)
		if len(res.Busy) == 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			return all, nil
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

// sortIdleClose sorts what one service's servers closed and kept into the
// client's idle pool and the connections it held, grouped. A client that
// closed its own idle connections has no idle pool left: whatever it still
// had open was held. For one that cannot, the servers cannot tell a pooled
// connection from one whose answer the client never read (both are idle to
// them), so the idle ones up to the declared pool count as the pool,
// those that carried the most requests first (a connection beyond the pool
// typically carried one call and was never reused), and the rest as held
// beyond it. A connection still serving a request is held either way.
func sortIdleClose(res fakeservers.IdleClose, clientClosedIdle bool, pool int) (idle int, held []HeldConns, open int) {
	closed := slices.Clone(res.Closed)
	slices.SortStableFunc(closed, func(a, b fakeservers.ConnRecord) int { return cmp.Compare(b.Requests, a.Requests) })
	var g heldGroups
	for _, c := range closed {
		switch {
		case clientClosedIdle:
			g.add(HeldNotReturned, c, res.Now)
		case idle < pool:
			idle++
		default:
			g.add(HeldBeyondPool, c, res.Now)
		}
	}
	for _, c := range res.Busy {
		g.add(HeldInFlight, c, res.Now)
	}
	return idle, g.list, len(closed) - idle + len(res.Busy)
}

// heldGroups gathers held connections by reason and last route, in the
// order first seen.
type heldGroups struct{ list []HeldConns }

func (g *heldGroups) add(reason HeldReason, c fakeservers.ConnRecord, now time.Time) {
	age := max(0, now.Sub(c.Accepted))
	for i := range g.list {
		h := &g.list[i]
		if h.Reason == reason && h.LastRoute == c.LastRoute {
			h.Count++
			h.Requests += c.Requests
			h.Oldest, h.Newest = max(h.Oldest, age), min(h.Newest, age)
			return
		}
	}
	g.list = append(g.list, HeldConns{Reason: reason, LastRoute: c.LastRoute, Count: 1, Requests: c.Requests, Oldest: age, Newest: age})
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// goleak 1.3.0 prints each goroutine as
// "Goroutine 12 in state chan receive, with pkg.fn on top of the stack:\n<stack>".
var goleakHeader = regexp.MustCompile(`Goroutine \d+ in state (.*?), with (\S+) on top of the stack:`)

// parseGoleak turns goleak's error text into descriptions of the leaked
// goroutines: where each is blocked and the function it was started with.
func parseGoleak(text string) (int, []LeakedGoroutine) {
	locs := goleakHeader.FindAllStringSubmatchIndex(text, -1)
	out := make([]LeakedGoroutine, 0, min(len(locs), maxLeakedKept))
	for i, loc := range locs {
		if len(out) == maxLeakedKept {
			break
		}
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		g := LeakedGoroutine{State: text[loc[2]:loc[3]], Top: text[loc[4]:loc[5]]}
		g.Entry = entryFunction(text[loc[1]:end])
		if g.Entry == "" {
			g.Entry = g.Top
		}
		out = append(out, g)
	}
	return len(locs), out
}

// entryFunction is the last function frame before "created by" in a
// goroutine's stack: the function the goroutine was started with.
func entryFunction(stack string) string {
	last := ""
	for _, line := range strings.Split(stack, "\n") {
		switch {
		case strings.HasPrefix(line, "created by "):
			return last
		case line == "", strings.HasPrefix(line, "\t"), strings.HasPrefix(line, "goroutine "), strings.HasPrefix(line, "..."):
			continue
		default:
			last = stripArgs(strings.TrimSpace(line))
		}
	}
	return last
}

func stripArgs(frame string) string {
	if !strings.HasSuffix(frame, ")") {
		return frame
	}
	depth := 0
	for i := len(frame) - 1; i >= 0; i-- {
		switch frame[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				return frame[:i]
			}
		}
	}
	return frame
}
