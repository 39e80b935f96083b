package harness

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// defaultResetRetry bounds how long Certify keeps retrying a failed
// Environment.Reset. A client that leaked descriptors can leave the process
// unable to open the sockets a reset needs ("too many open files") until
// the servers' closes land and the garbage collector finalizes what the
// client dropped: seconds, not minutes.
const defaultResetRetry = 15 * time.Second

// WithResetRetry bounds how long Certify retries a failed Environment.Reset
// before it gives up on the scenarios left (default 15s; each attempt is
// also bounded by WithResetTimeout).
func WithResetRetry(d time.Duration) CertifyOption {
	return func(c *certifyConfig) {
		if d > 0 {
			c.resetRetry = d
		}
	}
}

// resetEnvironment resets env with seed, retrying with a growing pause
// (100ms to 1s) until it succeeds, ctx ends or cfg.resetRetry has passed.
func resetEnvironment(ctx context.Context, env Environment, seed int64, cfg certifyConfig) error {
	deadline := time.Now().Add(cfg.resetRetry)
	pause := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, cfg.resetTimeout)
		err := env.Reset(rctx, seed)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Now().Add(pause).After(deadline) {
			return fmt.Errorf("%w (%d attempts over %v)", err, attempt, cfg.resetRetry)
		}
		// Sockets and files the client dropped without closing are closed
		// by their finalizers: collect them before trying again.
		runtime.GC()
		sleepCtx(ctx, pause)
		pause = min(2*pause, time.Second)
	}
}

// notRun records scenarios[from:] as not run, each with a failed CheckRun
// verdict saying why, and reports each as done.
func notRun(cert *Certificate, scenarios []Scenario, from int, cfg certifyConfig, start time.Time, why string) {
	for j := from; j < len(scenarios); j++ {
		s := scenarios[j]
		seed := s.EffectiveSeed(cfg.seed)
		reason := fmt.Sprintf("the scenario could not run: %s; the scenarios from %s on were not run (the results before are kept)", why, scenarios[from].Name)
		res := ScenarioResult{
			Scenario: s.Name, Family: s.Family, Proves: s.Proves, Seed: seed, Err: reason,
			Verdicts: []Verdict{{Check: CheckRun, Scenario: s.Name, Seed: seed, Status: StatusFail, Reason: reason}},
		}
		cert.Results = append(cert.Results, res)
		if cfg.progress != nil {
			cfg.progress(CertifyProgress{
				Index: j + 1, Total: len(scenarios), Scenario: s.Name, Family: s.Family, Seed: seed,
				Phase: PhaseDone, Elapsed: time.Since(start), Run: Progress{Scenario: s.Name, Seed: seed}, Verdicts: res.Verdicts,
			})
		}
	}
}
