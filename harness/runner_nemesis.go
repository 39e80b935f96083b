package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/poolproof/poolproof/internal/bounded"
)

// ErrStepNotReached is recorded for steps whose offset lies after the workload ended.
var ErrStepNotReached = errors.New("not run: the workload ended before this step's offset")

// runNemesis executes the schedule at its offsets from the workload start,
// each step bounded by the step timeout and ctx, and records what happened.
// Steps are applied one at a time in offset order, so a slow step delays the
// next one; the record shows the actual start.
func (r *runner) runNemesis(ctx context.Context) []StepRecord {
	steps := sortSteps(r.spec.Steps)
	if len(steps) == 0 {
		return nil
	}
	out := make([]StepRecord, 0, len(steps))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for i, st := range steps {
		if wait := st.At - time.Since(r.start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-r.stop:
			case <-ctx.Done():
				return append(out, notReached(steps[i:])...)
			}
		}
		// A step due before the workload stopped runs even when the
		// nemesis is late to it (a loaded machine), so that a fault is
		// not left on for want of its removal; only a step whose offset
		// lies after the stop is not reached.
		select {
		case <-r.stop:
			if st.At > time.Duration(r.stoppedAt.Load()) {
				return append(out, notReached(steps[i:])...)
			}
		default:
		}
		rec := r.runStep(ctx, st)
		out = append(out, rec)
		if r.cfg.observer != nil {
			r.cfg.observer.StepDone(rec)
		}
	}
	return out
}

// runStep applies one step now and records what became of it.
func (r *runner) runStep(ctx context.Context, st Step) StepRecord {
	label := st.Label
	if label == "" {
		label = st.Action.Kind + " " + st.Action.Service
	}
	r.lastStep.Store(&label)
	rec := StepRecord{Step: st, Started: time.Since(r.start), Outcome: StepApplied}
	if err := r.applyStep(ctx, st.Action); err != nil {
		rec.Outcome, rec.Err = StepFailed, err.Error()
		if errors.Is(err, ErrNoServerTruth) {
			rec.Outcome = StepUnsupported
		}
	}
	rec.Ended = time.Since(r.start)
	return rec
}

// applyStep applies one action in its own goroutine so that a fault driver
// that ignores its context cannot hold the run past the step timeout.
func (r *runner) applyStep(ctx context.Context, a Action) error {
	faults := r.env.Faults()
	if faults == nil {
		return fmt.Errorf("environment %s has no fault driver", r.env.Name())
	}
	err, abandoned := bounded.Call(ctx, r.cfg.stepTimeout, stepGrace, func(ctx context.Context) error {
		return faults.Apply(ctx, a)
	})
	switch {
	case abandoned:
		err = fmt.Errorf("fault driver did not return within the step timeout (%v): %w", r.cfg.stepTimeout, err)
	case errors.Is(err, bounded.ErrPanicked):
		err = fmt.Errorf("fault driver %w", err)
	}
	if err != nil {
		return fmt.Errorf("%s on %s: %w", a.Kind, a.Service, err)
	}
	return nil
}

func notReached(steps []Step) []StepRecord {
	out := make([]StepRecord, len(steps))
	for i, st := range steps {
		out[i] = StepRecord{Step: st, Started: -1, Ended: -1, Outcome: StepNotReached, Err: ErrStepNotReached.Error()}
	}
	return out
}
