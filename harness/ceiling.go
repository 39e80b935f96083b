package harness

import "time"

// ceilings are the run's limits above the baseline, 0 when off.
type ceilings struct {
	fds, goroutines int
}

// ceilings resolves the configured ceilings against this run's baseline.
// Without a descriptor count (non-Linux) or a known limit there is no
// descriptor ceiling.
func (c runConfig) ceilings(fdBase int, fdOK bool) ceilings {
	out := ceilings{fds: c.fdCeiling, goroutines: c.goroutineCeiling}
	if out.goroutines == 0 {
		out.goroutines = defaultGoroutineCeiling
	}
	if out.fds == 0 && fdOK {
		if lim, ok := fdLimit(); ok && lim > fdBase {
			out.fds = max(1, int(float64(lim-fdBase)*fdCeilingShare))
		}
	}
	if !fdOK || out.fds < 0 {
		out.fds = 0
	}
	out.goroutines = max(0, out.goroutines)
	return out
}

// checkCeilings stops the run, once, when a sample passes a ceiling: no
// call starts after it, the calls in flight finish (each bounded by the
// watchdog), and the run is torn down and measured as usual.
func (r *runner) checkCeilings(s Sample) {
	var stop *EarlyStop
	switch {
	case r.ceilings.fds > 0 && s.FDs >= 0 && int(s.FDs)-r.fdBase > r.ceilings.fds:
		stop = &EarlyStop{Resource: ResourceFDs, Above: int(s.FDs) - r.fdBase, Ceiling: r.ceilings.fds}
	case r.ceilings.goroutines > 0 && int(s.Goroutines) > r.ceilings.goroutines:
		stop = &EarlyStop{Resource: ResourceGoroutines, Above: int(s.Goroutines), Ceiling: r.ceilings.goroutines}
	default:
		return
	}
	stop.At, stop.Calls = time.Duration(s.At), s.Done
	if r.stoppedEarly.CompareAndSwap(nil, stop) {
		r.halt()
	}
}
