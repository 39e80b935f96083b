package harness

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/pprof/profile"
)

// runLabel is the pprof label key under which Run builds the clients and
// drives the workload. Go copies a goroutine's labels to every goroutine it
// starts, so each goroutine the client under test starts during a run (its
// connections' read and write loops, its background workers, the calls it
// spawns) carries the run's label, while the environment's goroutines, started
// by its own servers and accept loops, do not.
const runLabel = "poolproof_run"

var runSeq atomic.Int64

// newRunLabel makes the label value of one run, unique in the process: the
// same scenario and seed may run again (another client, another round)
// while goroutines an earlier run leaked are still alive.
func newRunLabel(requestIDPrefix string) string {
	return requestIDPrefix + "#" + strconv.FormatInt(runSeq.Add(1), 10)
}

// withRunLabel runs f with the goroutine labelled runLabel=label.
func withRunLabel(ctx context.Context, label string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(runLabel, label), f)
}

// labelledGoroutines counts the goroutines still running with
// runLabel=label, leaving out those with an environment function in their stack (a
// fault-driver call started by the nemesis finishes in the background). It
// reads the runtime's goroutine profile: stacks aggregated by the runtime,
// no text traceback per goroutine, so it costs milliseconds where goleak's
// formatted dump of every goroutine, repeated on each of its retries, costs
// seconds once a client has leaked thousands of goroutines.
//
// The count is a lower bound of the client's leaked goroutines: a goroutine
// started by a runtime timer (time.AfterFunc) carries no label. goleak, which
// sees every goroutine, decides whenever this count is zero.
func labelledGoroutines(label string, envFuncs []string) (int, []LeakedGoroutine, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		return 0, nil, fmt.Errorf("goroutine profile: %w", err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		return 0, nil, fmt.Errorf("goroutine profile: %w", err)
	}
	env := make(map[string]bool, len(envFuncs))
	for _, f := range envFuncs {
		env[f] = true
	}
	var kinds []LeakedGoroutine
	total := 0
	for _, s := range p.Sample {
		if !slices.Contains(s.Label[runLabel], label) || len(s.Value) == 0 || s.Value[0] <= 0 {
			continue
		}
		funcs := stackFunctions(s)
		if slices.ContainsFunc(funcs, func(f string) bool { return env[f] }) {
			continue
		}
		n := int(s.Value[0])
		total += n
		kinds = append(kinds, LeakedGoroutine{Top: topFunction(funcs), Entry: entryOf(funcs), Count: n})
	}
	sort.SliceStable(kinds, func(i, j int) bool { return kinds[i].Count > kinds[j].Count })
	return total, kinds[:min(len(kinds), maxLeakedKept)], nil
}

// stackFunctions lists a sample's functions from the top of the stack (the
// innermost call, inlined calls included) to its entry.
func stackFunctions(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, l := range loc.Line { // innermost first within a location
			if l.Function != nil {
				out = append(out, l.Function.Name)
			}
		}
	}
	return out
}

// topFunction is where the goroutine is blocked: the first function that
// is not the runtime's own scheduling (goleak names the same frame).
func topFunction(funcs []string) string {
	for _, f := range funcs {
		if !strings.HasPrefix(f, "runtime.") {
			return f
		}
	}
	if len(funcs) > 0 {
		return funcs[0]
	}
	return ""
}

// entryOf is the function the goroutine was started with: the outermost
// frame below runtime.goexit.
func entryOf(funcs []string) string {
	for i := len(funcs) - 1; i >= 0; i-- {
		if funcs[i] != "runtime.goexit" {
			return funcs[i]
		}
	}
	return ""
}
