package explore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// Options tune Explore.
type Options struct {
	// Seed seeds the generator: case i is Generate(Seed, i).
	Seed uint64
	// Budget bounds the time spent running generated cases (shrinking a
	// finding has its own bound, Shrink.Budget).
	Budget time.Duration
	// MaxFindings stops the exploration once this many distinct checks
	// failed and were shrunk (0: explore until the budget ends).
	MaxFindings int
	// Shrink bounds each shrink; Shrink.Progress is called as in Shrink.
	Shrink ShrinkOptions
	// NoShrink keeps the failing cases as they were generated.
	NoShrink bool
	// Progress is told of every case and finding; it must return quickly.
	Progress func(Event)
}

// Event kinds.
const (
	EventCase    = "case"    // a case is about to run
	EventJudged  = "judged"  // a case ran
	EventFinding = "finding" // a case failed a check not found before; shrinking starts
	EventShrunk  = "shrunk"  // a finding was shrunk
)

// Event is what Explore reports as it goes.
type Event struct {
	Kind     string
	Index    int // the case's number, from 0
	Scenario harness.Scenario
	Outcome  Outcome // EventJudged, EventFinding
	Check    string  // EventFinding, EventShrunk
	Shrunk   *ShrinkResult
	// Finding is the finding, once shrunk (EventShrunk), so a caller can
	// write it down at once.
	Finding *Finding
	Summary Summary // counts so far
}

// Finding is one distinct failing check the exploration found.
type Finding struct {
	Check   string
	Index   int // the case that found it
	Case    harness.Scenario
	Outcome Outcome // the failing run of the case
	// CasesRun is how many cases ran until it was found, this one included.
	CasesRun int
	// Shrink is the shrink of the case (nil with NoShrink); ShrinkErr says
	// why it could not be shrunk (the failure did not reproduce...).
	Shrink    *ShrinkResult
	ShrinkErr string
}

// Summary counts an exploration.
type Summary struct {
	Seed        uint64
	Cases       int // run to the end and judged
	Failing     int // cases with a failed check
	Troubled    int // cases that could not be judged (harness.run, harness.nemesis)
	ShrinkSteps int // reductions tried
	Findings    []Finding
	// Unconfirmed are failures that did not fail again on a rerun: timing
	// flakes of the client or of a check, listed for a person to look at;
	// the same check may still become a finding later.
	Unconfirmed []Finding
	Elapsed     time.Duration
	// Interrupted is set when ctx ended the exploration early.
	Interrupted bool
}

// Explore generates cases from opts.Seed and runs each with r until the
// budget ends, ctx is done or MaxFindings distinct checks failed. A case
// that fails a check not failed before is a finding: it is shrunk (while
// the exploration clock waits) and exploring goes on. It returns what it
// found, also when interrupted.
func Explore(ctx context.Context, r Runner, opts Options) Summary {
	start := time.Now()
	sum := Summary{Seed: opts.Seed}
	var explored time.Duration // time spent on cases, not shrinks
	emit := func(ev Event) {
		if opts.Progress != nil {
			ev.Summary = sum
			opts.Progress(ev)
		}
	}
	shrinkOpts := opts.Shrink
	userShrinkProgress := shrinkOpts.Progress
	shrinkOpts.Progress = func(st ShrinkStep) {
		sum.ShrinkSteps++
		if userShrinkProgress != nil {
			userShrinkProgress(st)
		}
	}
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			sum.Interrupted = true
			break
		}
		if explored >= opts.Budget || (opts.MaxFindings > 0 && len(sum.Findings) >= opts.MaxFindings) {
			break
		}
		s := Generate(opts.Seed, i)
		emit(Event{Kind: EventCase, Index: i, Scenario: s})
		caseStart := time.Now()
		out, err := r.Run(ctx, s)
		explored += time.Since(caseStart)
		if ctx.Err() != nil {
			sum.Interrupted = true
			break
		}
		if err != nil || out.Trouble != "" {
			sum.Troubled++
			if err != nil && out.Trouble == "" {
				out.Trouble = err.Error()
			}
			emit(Event{Kind: EventJudged, Index: i, Scenario: s, Outcome: out})
			continue
		}
		sum.Cases++
		if len(out.Failed) > 0 {
			sum.Failing++
		}
		emit(Event{Kind: EventJudged, Index: i, Scenario: s, Outcome: out})
		for _, id := range out.Failed {
			if slices.ContainsFunc(sum.Findings, func(f Finding) bool { return f.Check == id }) {
				continue
			}
			f := Finding{Check: id, Index: i, Case: s, Outcome: out, CasesRun: sum.Cases + sum.Troubled}
			emit(Event{Kind: EventFinding, Index: i, Scenario: s, Outcome: out, Check: id})
			if !opts.NoShrink {
				res, err := Shrink(ctx, r, s, id, &out, shrinkOpts)
				if errors.Is(err, ErrNotReproduced) {
					f.ShrinkErr = err.Error()
					sum.Unconfirmed = append(sum.Unconfirmed, f)
					emit(Event{Kind: EventShrunk, Index: i, Scenario: s, Check: id})
					continue
				}
				if err != nil {
					f.ShrinkErr = err.Error()
					if errors.Is(err, context.Canceled) || ctx.Err() != nil {
						sum.Interrupted = true
					}
				} else {
					f.Shrink = &res
					if res.Stopped == "interrupted" {
						sum.Interrupted = true
					}
				}
			}
			sum.Findings = append(sum.Findings, f)
			if !opts.NoShrink {
				emit(Event{Kind: EventShrunk, Index: i, Scenario: s, Check: id, Shrunk: f.Shrink, Finding: &f})
			}
			if sum.Interrupted || (opts.MaxFindings > 0 && len(sum.Findings) >= opts.MaxFindings) {
				break
			}
		}
	}
	sum.Elapsed = time.Since(start)
	return sum
}
