package scenarios

import (
	"slices"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// soakFactor is how much longer a Soak scenario runs than its Standard
// twin: long enough for a slow leak (a goroutine or a connection every few
// hundred calls) or a drift in latency to stand out, short enough for a
// nightly run (about four minutes).
const soakFactor = 4

// Soak is the Standard catalog stretched soakFactor times: every workload
// runs longer and every fault comes and goes at the same fraction of the
// run, so each window holds soakFactor times the calls. The pacing of
// calls (think time, rates, concurrency) is unchanged: a soak is the same
// load for longer, not more load.
func Soak() []harness.Scenario {
	out := Standard()
	for i := range out {
		out[i] = lengthen(out[i], soakFactor)
	}
	return out
}

// lengthen scales a scenario's duration, call budget, step offsets and
// stretchable windows by k.
func lengthen(s harness.Scenario, k int) harness.Scenario {
	s.Workload.Duration *= time.Duration(k)
	s.Workload.MaxCalls *= k
	s.Steps = slices.Clone(s.Steps)
	for i := range s.Steps {
		s.Steps[i].At *= time.Duration(k)
	}
	s.Stretch = slices.Clone(s.Stretch)
	for i := range s.Stretch {
		s.Stretch[i].From *= time.Duration(k)
		s.Stretch[i].Until *= time.Duration(k)
	}
	return s
}
