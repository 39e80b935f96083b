package main

import (
	"fmt"
	"io"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// progressPrinter writes a certification's progress as plain lines a person
// can follow and a CI log keeps readable: which scenario, each fault as it
// goes on, a heartbeat every few seconds, and each scenario's outcome.
type progressPrinter struct {
	w         io.Writer
	step      string
	lastBeat  time.Duration
	heartbeat time.Duration
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, heartbeat: 5 * time.Second}
}

func (p *progressPrinter) update(ev harness.CertifyProgress) {
	switch ev.Phase {
	case harness.PhaseStart:
		p.step, p.lastBeat = "", 0
		fmt.Fprintf(p.w, "[%d/%d] %s (%s, seed %d) elapsed %s, about %s left\n",
			ev.Index, ev.Total, ev.Scenario, ev.Family, ev.Seed, round(ev.Elapsed), round(ev.Remaining))
	case harness.PhaseRun:
		if ev.Step != p.step {
			p.step = ev.Step
			fmt.Fprintf(p.w, "        %5s  fault: %s\n", round(ev.ScenarioElapsed), ev.Step)
		}
		if ev.ScenarioElapsed-p.lastBeat >= p.heartbeat {
			p.lastBeat = ev.ScenarioElapsed
			fmt.Fprintf(p.w, "        %5s  %d calls, %d failed, %d in flight\n",
				round(ev.ScenarioElapsed), ev.Run.Calls, ev.Run.Failed, ev.Run.InFlight)
		}
	case harness.PhaseDone:
		failed := 0
		for _, v := range ev.Verdicts {
			if v.Status == harness.StatusFail {
				failed++
			}
		}
		outcome := "passed"
		if failed > 0 {
			outcome = fmt.Sprintf("FAILED %d of %d checks", failed, len(ev.Verdicts))
		}
		fmt.Fprintf(p.w, "        %5s  %s, %d calls\n", round(ev.ScenarioElapsed), outcome, ev.Run.Calls)
	}
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
