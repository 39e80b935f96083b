package harness

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/internal/bounded"
)

// maxLeakedKept caps the leaked goroutines (or kinds of them) described in
// the history; the count in LeakRecord.Leaked is always complete.
const maxLeakedKept = 200

// goroutineSettle bounds how long measureLeaks waits for the run's labelled
// goroutines to end after teardown before it counts them as leaked; longer
// than goleak's own retries (~0.5s), so it is never the stricter of the two.
const goroutineSettle = time.Second

type leakInputs struct {
	env             Environment
	label           string // the value of runLabel on the run's goroutines
	services        []string
	truthOK         map[string]bool
	baseline        goleak.Option // goleak.IgnoreCurrent() taken before the client was built
	baseG           int
	fdBase          int
	fdOK            bool
	fdTolerance     int
	threadTolerance int
	reporters       []LeakReporter // the distinct clients that run in a child process
	settle          time.Duration
	observe         time.Duration
}

// measureOutside measures what the client left outside this process,
// waiting (each bounded by settle) for the servers to see its connections
// close and for the child processes of LeakReporter clients to return to
// their baseline.
func measureOutside(ctx context.Context, in leakInputs) LeakRecord {
	rec := LeakRecord{GoroutineBaseline: in.baseG, FDTolerance: in.fdTolerance, FDBaseline: in.fdBase}
	start := time.Now()
	rec.ServerConns = waitServerConns(ctx, in)
	rec.ServerConnsWait = time.Since(start)
	if len(in.reporters) > 0 {
		rec.ThreadTolerance = in.threadTolerance
		rec.Processes = waitProcesses(ctx, in)
	}
	return rec
}

// measureLeaks runs after teardown. It takes outside, measured before
// Close for a client in a child process, or measures it now; then waits
// (bounded by settle) for file descriptors to return to baseline, then
// looks for the client's goroutines still running: first those carrying
// the run's label (cheap, see labelledGoroutines); when none is left,
// goleak decides, reporting every goroutine that is neither the
// baseline's nor the environment's (it retries for ~0.5s itself).
func measureLeaks(ctx context.Context, in leakInputs, outside *LeakRecord) LeakRecord {
	var rec LeakRecord
	if outside != nil {
		rec = *outside
	} else {
		rec = measureOutside(ctx, in)
	}

	if in.fdOK {
		deadline := time.Now().Add(in.settle)
		for {
			n, ok := countOpenFDs()
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
// zero or the settle bound passes.
func waitServerConns(ctx context.Context, in leakInputs) map[string]ServerConnsAfter {
	out := make(map[string]ServerConnsAfter, len(in.services))
	counter, _ := in.env.(ConnectionCounter)
	deadline := time.Now().Add(in.settle)
	for {
		allZero := true
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
			out[name] = ServerConnsAfter{Available: true, Open: n}
			if n > 0 {
				allZero = false
			}
		}
		if allZero || !time.Now().Before(deadline) || ctx.Err() != nil {
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
