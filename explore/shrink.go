package explore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// Runner runs one scenario against the client under test and judges it.
type Runner interface {
	Run(ctx context.Context, s harness.Scenario) (Outcome, error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, s harness.Scenario) (Outcome, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, s harness.Scenario) (Outcome, error) { return f(ctx, s) }

// Outcome is what a run of one scenario came to.
type Outcome struct {
	// Failed lists the ids of the checks that failed, in the order the
	// scenario lists them; harness.CheckRun and harness.CheckNemesis are
	// in Trouble instead: they say the run, not the client, went wrong.
	Failed []string
	// Trouble is why the run could not be judged, "" when it was.
	Trouble string
	// Verdicts are every verdict of the run.
	Verdicts []harness.Verdict
	// Certificate is the certification's own record (nil from a fake runner).
	Certificate *harness.Certificate
}

// FailedCheck reports whether check id failed.
func (o Outcome) FailedCheck(id string) bool { return slices.Contains(o.Failed, id) }

// Verdict returns the verdict of check id (a failed one first).
func (o Outcome) Verdict(id string) (harness.Verdict, bool) {
	i := slices.IndexFunc(o.Verdicts, func(v harness.Verdict) bool { return v.Check == id && v.Status == harness.StatusFail })
	if i < 0 {
		i = slices.IndexFunc(o.Verdicts, func(v harness.Verdict) bool { return v.Check == id })
	}
	if i < 0 {
		return harness.Verdict{}, false
	}
	return o.Verdicts[i], true
}

// ShrinkOptions bound a shrink.
type ShrinkOptions struct {
	// Confirm is how many reruns in a row must fail the check for a
	// reduction to be kept (default 2): timing flakes.
	Confirm int
	// Final is how many times the result is rerun at the end (default 10;
	// negative: none).
	Final int
	// Budget bounds the shrink's wall time (default 3m); MaxAttempts the
	// reductions tried (default 60).
	Budget      time.Duration
	MaxAttempts int
	// Progress is told of every reduction tried; it must return quickly.
	Progress func(ShrinkStep)
}

func (o ShrinkOptions) withDefaults() ShrinkOptions {
	if o.Confirm <= 0 {
		o.Confirm = 2
	}
	if o.Final < 0 {
		o.Final = 0
	} else if o.Final == 0 {
		o.Final = 10
	}
	if o.Budget <= 0 {
		o.Budget = 3 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 60
	}
	return o
}

// ShrinkStep is one reduction tried.
type ShrinkStep struct {
	Attempt  int
	What     string
	Kept     bool
	Runs     int  // reruns it took to decide
	Size     Size // of the scenario kept so far
	Elapsed  time.Duration
	Scenario harness.Scenario // the reduction tried
}

// ShrinkResult is what a shrink came to.
type ShrinkResult struct {
	Check    string
	Original harness.Scenario
	Shrunk   harness.Scenario
	Before   Size
	After    Size
	Attempts int // reductions tried
	Kept     []string
	Runs     int // runs in all, the final reruns included
	// FinalFailed of FinalRuns reruns of Shrunk failed Check.
	FinalFailed, FinalRuns int
	// SteppedBack counts the reductions undone because their result did
	// not fail every final rerun.
	SteppedBack int
	// Last is the last failing outcome of Shrunk: its verdict says what
	// the minimal failure is.
	Last    Outcome
	Elapsed time.Duration
	// Stopped says why the shrink ended before no reduction was left:
	// "budget", "attempts", "interrupted", "" when it ran out of reductions.
	Stopped string
}

// ErrNotReproduced is returned by Shrink when the scenario does not fail
// the check on its first confirming runs: there is nothing to shrink.
var ErrNotReproduced = errors.New("the check does not fail on a rerun")

// Shrink reduces s, which failed check, to a smaller scenario that still
// fails it: greedily, trying the reductions of s in order and keeping the
// first whose reruns all fail the check (Confirm in a row), then starting
// over from the reduced scenario, until no reduction is kept, the budget
// ends or MaxAttempts reductions were tried. A reduction tried once (the
// same scenario, or the same description) is not tried again. first, when not nil, is a failing outcome of s already
// seen (it counts as one confirming run).
func Shrink(ctx context.Context, r Runner, s harness.Scenario, check string, first *Outcome, opts ShrinkOptions) (ShrinkResult, error) {
	o := opts.withDefaults()
	start := time.Now()
	deadline := start.Add(o.Budget)
	res := ShrinkResult{Check: check, Original: s, Before: SizeOf(s), Shrunk: s}

	// confirm reruns c until it passes the check (false) or failed need
	// times in a row (true).
	confirm := func(c harness.Scenario, need int) (bool, Outcome, int, error) {
		var last Outcome
		for i := range need {
			out, err := r.Run(ctx, c)
			res.Runs++
			if err != nil {
				return false, last, i + 1, err
			}
			if !out.FailedCheck(check) {
				return false, out, i + 1, nil
			}
			last = out
		}
		return true, last, need, nil
	}

	need := o.Confirm
	if first != nil && first.FailedCheck(check) {
		need--
		res.Last = *first
	}
	if need > 0 {
		ok, last, _, err := confirm(s, need)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, fmt.Errorf("%w: %s passed %s on a rerun", ErrNotReproduced, s.Name, check)
		}
		res.Last = last
	}

	tried := map[string]bool{}
	cur := s
	chain := []harness.Scenario{s} // the case after each reduction kept
	for progress := true; progress; {
		progress = false
		for _, cand := range reductions(cur, check) {
			// A reduction tried once is not tried again; nor is dropping a
			// fault, a service or the callers' limits that was refused, on
			// a case reduced since: reruns cost seconds each, and a fault
			// that mattered before a window was shortened still matters.
			// (A shorter workload is tried again: a shorter window may
			// have made room for it.)
			key := fingerprint(cand.s)
			if tried[key] || tried[cand.what] {
				continue
			}
			switch {
			case ctx.Err() != nil:
				res.Stopped = "interrupted"
			case time.Now().After(deadline):
				res.Stopped = "budget"
			case res.Attempts >= o.MaxAttempts:
				res.Stopped = "attempts"
			}
			if res.Stopped != "" {
				break
			}
			tried[key] = true
			if strings.HasPrefix(cand.what, "without ") || cand.what == callersWait {
				tried[cand.what] = true
			}
			res.Attempts++
			ok, last, runs, err := confirm(cand.s, o.Confirm)
			if err != nil && ctx.Err() != nil {
				res.Stopped = "interrupted"
				break
			}
			if err != nil {
				ok = false // a run that could not be judged does not reproduce
			}
			if ok {
				cur, res.Last = cand.s, last
				res.Kept = append(res.Kept, cand.what)
				chain = append(chain, cur)
			}
			if o.Progress != nil {
				o.Progress(ShrinkStep{Attempt: res.Attempts, What: cand.what, Kept: ok, Runs: runs, Size: SizeOf(cur), Elapsed: time.Since(start), Scenario: cand.s})
			}
			if ok {
				progress = true
				break
			}
		}
		if res.Stopped != "" {
			break
		}
	}
	// The final reruns: a reduction confirmed by a few runs can still sit
	// on a knife's edge (fails one run in two). When the result does not
	// fail every final rerun, step back through the reductions kept, most
	// recent first, to the first case that does, within half the budget
	// again; a case is left at its first passing rerun.
	res.Shrunk, res.After = cur, SizeOf(cur)
	if res.Stopped != "interrupted" && o.Final > 0 {
		finalDeadline := time.Now().Add(o.Budget / 2)
		for k := len(chain) - 1; k >= 0; k-- {
			failed, runs, last := 0, 0, Outcome{}
			for range o.Final {
				if ctx.Err() != nil {
					break
				}
				out, err := r.Run(ctx, chain[k])
				res.Runs++
				if err != nil {
					continue
				}
				runs++
				if !out.FailedCheck(check) {
					break
				}
				failed++
				last = out
			}
			res.Shrunk, res.After, res.FinalFailed, res.FinalRuns = chain[k], SizeOf(chain[k]), failed, runs
			if failed > 0 {
				res.Last = last
			}
			res.Kept = res.Kept[:k]
			if (failed == runs && runs > 0) || ctx.Err() != nil || time.Now().After(finalDeadline) {
				break
			}
			if k > 0 {
				res.SteppedBack++
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// fingerprint identifies a scenario's content for the tried set.
func fingerprint(s harness.Scenario) string {
	b, err := harness.MarshalScenarios([]harness.Scenario{s})
	if err != nil {
		return fmt.Sprintf("%#v", s)
	}
	return string(b)
}
