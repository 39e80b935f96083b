package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// CheckNemesis is the check id of the verdict Certify records when a
// scenario's fault could not be applied: the run did not have the fault its
// checks are about, so none of them may pass.
const CheckNemesis = "harness.nemesis"

// CheckRun is the check id of the verdict Certify records when a scenario
// could not run at all (the factory or the WithClientReset hook failed, the
// environment does not serve a service of the mix): a client that cannot be
// built is not certified.
const CheckRun = "harness.run"

// CheckDriver is the check id of the verdict Certify records for a client
// that runs in a child process (a driver, see LeakReporter): failed when
// the driver broke the protocol (crashed, hung, printed what is not a
// message, answered a call it was never sent...) or when its idle close or
// Close failed (no close_ok, no exit when told); passed otherwise, naming
// the driver.
const CheckDriver = "harness.driver"

// Phases of CertifyProgress.
const (
	PhaseStart = "start" // the environment was reset, the run is about to begin
	PhaseRun   = "run"   // a runner sample, every ~100ms
	PhaseDone  = "done"  // the scenario was judged (or could not run)
)

// CertifyProgress is what the progress callback of Certify sees.
type CertifyProgress struct {
	Index    int // 1-based position of the scenario
	Total    int // scenarios in the certification
	Scenario string
	Family   string
	Seed     int64
	Phase    string // PhaseStart, PhaseRun or PhaseDone
	Step     string // label of the last nemesis step started, "" before the first
	// Elapsed is the wall time since Certify began.
	Elapsed time.Duration
	// ScenarioElapsed is the wall time since this scenario began.
	ScenarioElapsed time.Duration
	// Remaining estimates the wall time left: the workload durations still
	// to run plus, per scenario, the harness's own overhead (reset, warm-up,
	// teardown, leak settling) as measured on the scenarios done so far.
	Remaining time.Duration
	// Run is the runner's latest snapshot (zero at PhaseStart).
	Run Progress
	// Verdicts are the scenario's verdicts, at PhaseDone only.
	Verdicts []Verdict
}

// CertifyOption tunes Certify.
type CertifyOption func(*certifyConfig)

type certifyConfig struct {
	progress     func(CertifyProgress)
	seed         int64
	runOpts      []RunOption
	resetTimeout time.Duration
	clientReset  func(context.Context) error // WithClientReset
	resetRetry   time.Duration
}

// WithCertifyProgress calls fn when each scenario starts, at every runner
// sample and when each scenario is judged. Calls come from one goroutine at
// a time; fn must return quickly.
func WithCertifyProgress(fn func(CertifyProgress)) CertifyOption {
	return func(c *certifyConfig) { c.progress = fn }
}

// WithSeed runs every scenario with seed instead of its own; 0 keeps each
// scenario's seed. The seed drives the workload's draws and, through
// Environment.Reset, the fake services' fault draws; it is recorded in the
// Certificate and in every verdict, so a failure can be replayed.
func WithSeed(seed int64) CertifyOption {
	return func(c *certifyConfig) { c.seed = seed }
}

// WithRunOptions passes opts to every Run. A WithProgress among them is
// still called, before the certification's own progress callback.
func WithRunOptions(opts ...RunOption) CertifyOption {
	return func(c *certifyConfig) { c.runOpts = append(c.runOpts, opts...) }
}

// WithResetTimeout bounds each Environment.Reset and each WithClientReset
// call (default 30s).
func WithResetTimeout(d time.Duration) CertifyOption {
	return func(c *certifyConfig) {
		if d > 0 {
			c.resetTimeout = d
		}
	}
}

// Certificate is the outcome of a certification: every scenario's history
// and verdicts, against the contract the client declared.
type Certificate struct {
	Profile     Profile `json:"profile"`
	Environment string  `json:"environment"`
	// Seed is the seed that replaced every scenario's own, 0 when each ran
	// with its own (ScenarioResult.Seed has the one used).
	Seed    int64         `json:"seed,omitempty"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed"`
	// Interrupted is set when the context was canceled before every
	// scenario ran: the certificate holds what was done so far.
	Interrupted bool             `json:"interrupted,omitempty"`
	Results     []ScenarioResult `json:"results"`
}

// ScenarioResult is one scenario's run and judgement.
type ScenarioResult struct {
	Scenario string        `json:"scenario"`
	Family   string        `json:"family"`
	Proves   string        `json:"proves"`
	Seed     int64         `json:"seed"`
	Protocol string        `json:"protocol"`          // what the services offered: ProtocolHTTP1 or ProtocolHTTP2
	History  *History      `json:"history,omitempty"` // nil when the run could not start
	Verdicts []Verdict     `json:"verdicts"`
	Elapsed  time.Duration `json:"elapsed"` // wall time, reset and teardown included
	// Err is why the run could not start or was cut short, "" otherwise.
	Err string `json:"err,omitempty"`
	// Interrupted is set when the context was canceled during the run; the
	// history is partial and was not judged.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Passed reports a scenario that ran to the end with every verdict passed or
// not applicable, and at least one passed.
func (r ScenarioResult) Passed() bool {
	if r.Err != "" || r.Interrupted {
		return false
	}
	passed := 0
	for _, v := range r.Verdicts {
		switch v.Status {
		case StatusFail:
			return false
		case StatusPass:
			passed++
		}
	}
	return passed > 0
}

// Passed reports a certification that ran every scenario to the end and
// whose every scenario passed. A certificate with no result never passes.
func (c *Certificate) Passed() bool {
	if c == nil || c.Interrupted || len(c.Results) == 0 {
		return false
	}
	for _, r := range c.Results {
		if !r.Passed() {
			return false
		}
	}
	return true
}

// Failures lists every failed verdict, in scenario order.
func (c *Certificate) Failures() []Verdict {
	return c.withStatus(StatusFail)
}

// NotApplicable lists every verdict that could not be judged (no
// server-side truth, no fd counts on this OS...): neither passed nor failed.
func (c *Certificate) NotApplicable() []Verdict {
	return c.withStatus(StatusNotApplicable)
}

func (c *Certificate) withStatus(s Status) []Verdict {
	if c == nil {
		return nil
	}
	var out []Verdict
	for _, r := range c.Results {
		for _, v := range r.Verdicts {
			if v.Status == s {
				out = append(out, v)
			}
		}
	}
	return out
}

// Result returns the result of the named scenario.
func (c *Certificate) Result(scenario string) (ScenarioResult, bool) {
	if c == nil {
		return ScenarioResult{}, false
	}
	for _, r := range c.Results {
		if r.Scenario == scenario {
			return r, true
		}
	}
	return ScenarioResult{}, false
}

// defaultOverhead is the per-scenario harness time assumed by the
// remaining-time estimate before any scenario finished.
const defaultOverhead = time.Second

// Certify runs every scenario against the clients factory builds, in order,
// in env: reset the environment, run, judge with the scenario's checks
// bounded by profile. It is what both the Ginkgo suites and the CLI call.
//
// A scenario that cannot run (the factory failed...) gets one failed
// verdict with check id CheckRun, and the certification goes on. When the
// environment cannot be reset, even retried (see WithResetRetry), that
// scenario and every later one get a failed CheckRun verdict saying why,
// and the certificate is returned complete: a client that took the
// environment down is not certified, and its report can still be written.
// When ctx is canceled Certify stops and returns the certificate of what
// was done so far, marked Interrupted, with ctx's error. It returns an
// error without a certificate only when nothing could be run (invalid
// scenarios, no environment or factory).
func Certify(ctx context.Context, env Environment, factory ClientFactory, profile Profile, scenarios []Scenario, opts ...CertifyOption) (*Certificate, error) {
	cfg := certifyConfig{resetTimeout: 30 * time.Second, resetRetry: defaultResetRetry}
	for _, o := range opts {
		o(&cfg)
	}
	if env == nil {
		return nil, fmt.Errorf("%w: no environment: pass one, e.g. from NewEmbedded", ErrInvalidRun)
	}
	raiseFDLimit()
	if factory == nil {
		return nil, fmt.Errorf("%w: no client factory: pass a func(Service) (Client, error)", ErrInvalidRun)
	}
	if err := validateScenarios(scenarios); err != nil {
		return nil, err
	}
	scenarios = Runs(scenarios, profile)
	// A WithProgress among the run options is kept and chained.
	probe := defaultRunConfig()
	for _, o := range cfg.runOpts {
		o(&probe)
	}
	userRunProgress := probe.progress

	start := time.Now()
	cert := &Certificate{Profile: profile, Environment: env.Name(), Seed: cfg.seed, Started: start}
	est := newEstimator(scenarios)
	defer func() { cert.Elapsed = time.Since(start) }()
	primeClient(ctx, env, factory, profile)

	for i, s := range scenarios {
		if err := ctx.Err(); err != nil {
			cert.Interrupted = true
			return cert, fmt.Errorf("certification interrupted before scenario %d of %d (%s): %w", i+1, len(scenarios), s.Name, err)
		}
		scStart := time.Now()
		seed := s.EffectiveSeed(cfg.seed)
		report := func(phase string, run Progress, verdicts []Verdict) {
			if cfg.progress == nil {
				return
			}
			scElapsed := time.Since(scStart)
			cfg.progress(CertifyProgress{
				Index: i + 1, Total: len(scenarios), Scenario: s.Name, Family: s.Family, Seed: seed,
				Phase: phase, Step: run.Step, Elapsed: time.Since(start), ScenarioElapsed: scElapsed,
				Remaining: est.remaining(i, scElapsed, phase == PhaseDone), Run: run, Verdicts: verdicts,
			})
		}

		if err := resetEnvironment(ctx, env, seed, cfg); err != nil {
			if ctx.Err() != nil {
				cert.Interrupted = true
				return cert, fmt.Errorf("certification interrupted before scenario %d of %d (%s): %w", i+1, len(scenarios), s.Name, ctx.Err())
			}
			notRun(cert, scenarios, i, cfg, start, fmt.Sprintf("resetting environment %s before scenario %s failed: %v", env.Name(), s.Name, err))
			return cert, nil
		}
		report(PhaseStart, Progress{Scenario: s.Name, Seed: seed}, nil)

		runOpts := append(append([]RunOption(nil), cfg.runOpts...), WithProgress(func(p Progress) {
			if userRunProgress != nil {
				userRunProgress(p)
			}
			report(PhaseRun, p, nil)
		}))
		var h *History
		runErr := resetClient(ctx, cfg.clientReset, cfg.resetTimeout)
		if runErr == nil {
			h, runErr = Run(ctx, env, factory, s.Spec(profile, cfg.seed), runOpts...)
		}
		res := ScenarioResult{Scenario: s.Name, Family: s.Family, Proves: s.Proves, Seed: seed, Protocol: s.Protocol, History: h}
		switch {
		case runErr != nil && ctx.Err() != nil:
			res.Err, res.Interrupted = runErr.Error(), true
		case runErr != nil:
			res.Err = runErr.Error()
			res.Verdicts = []Verdict{{
				Check: CheckRun, Scenario: s.Name, Seed: seed, Status: StatusFail,
				Reason: "the scenario could not run: " + runErr.Error(),
			}}
		default:
			h.Family, h.Proves, h.Checks = s.Family, s.Proves, s.Checks
			res.Verdicts = judgeHistory(h)
		}
		res.Elapsed = time.Since(scStart)
		cert.Results = append(cert.Results, res)
		est.done(i, res.Elapsed)
		var last Progress
		if h != nil {
			last = Progress{Scenario: s.Name, Seed: seed, Elapsed: h.Elapsed, Calls: int64(len(h.Calls))}
		}
		report(PhaseDone, last, res.Verdicts)
		if res.Interrupted {
			cert.Interrupted = true
			return cert, fmt.Errorf("certification interrupted during scenario %d of %d (%s): %w", i+1, len(scenarios), s.Name, errors.Join(runErr, ctx.Err()))
		}
	}
	return cert, nil
}

// primeClient builds the client of every service, makes a few calls and
// tears it down, once, before the first scenario, and forgets the run. A
// library's one-off background state (a metrics or resolver goroutine it
// starts once per process, a global pool) then exists before the first
// scenario's leak baseline, so it is not charged to that scenario; what a
// client leaks per scenario still grows each scenario's count.
func primeClient(ctx context.Context, env Environment, factory ClientFactory, profile Profile) {
	var mix Mix // one call weight per service the environment serves
	for _, s := range env.Services() {
		switch s.Name {
		case fakeservers.Inventory:
			mix.Inventory = 1
		case fakeservers.Payment:
			mix.Payment = 1
		case fakeservers.Notification:
			mix.Notification = 1
		}
	}
	if mix.total() == 0 {
		return
	}
	spec := RunSpec{Scenario: "prime", Seed: DefaultSeed, Profile: profile,
		Workload: Workload{Mode: ClosedLoop, Duration: 2 * time.Second, MaxCalls: 3 * mix.total(), Workers: 1, Mix: mix}}
	// No reset of its own: the first scenario's reset follows, and reports
	// an environment that cannot be reset.
	_, _ = Run(ctx, env, factory, spec, WithSettle(200*time.Millisecond))
}

// estimator predicts the remaining wall time of a certification from the
// workload durations and the overhead measured so far.
type estimator struct {
	durations []time.Duration
	overhead  time.Duration // sum of (elapsed - duration) over finished scenarios
	finished  int
}

func newEstimator(scenarios []Scenario) *estimator {
	d := make([]time.Duration, len(scenarios))
	for i, s := range scenarios {
		d[i] = s.Workload.Duration
	}
	return &estimator{durations: d}
}

func (e *estimator) perScenarioOverhead() time.Duration {
	if e.finished == 0 {
		return defaultOverhead
	}
	return max(0, e.overhead/time.Duration(e.finished))
}

func (e *estimator) done(i int, elapsed time.Duration) {
	e.overhead += elapsed - e.durations[i]
	e.finished++
}

// remaining is the estimate while scenario i is elapsed into (or finished).
func (e *estimator) remaining(i int, elapsed time.Duration, finished bool) time.Duration {
	over := e.perScenarioOverhead()
	var left time.Duration
	if !finished {
		left = max(0, e.durations[i]+over-elapsed)
	}
	for _, d := range e.durations[i+1:] {
		left += d + over
	}
	return left
}

// ErrNoChecks is returned by Rejudge for a history that holds no checks.
var ErrNoChecks = errors.New("the history holds no checks")

// Rejudge judges a saved history again, alone: with the checks it holds
// (History.Checks, saved by Certify) and the same adjustments Certify
// makes (to the faults that reached the environment, to a driver that
// broke the protocol), so it gives the verdicts the run gave. Edit a bound
// in the history's profile or checks and the verdict follows.
func Rejudge(h *History) ([]Verdict, error) {
	if h == nil || len(h.Checks) == 0 {
		return nil, fmt.Errorf("%w: it was saved by Run, not Certify, or by an older poolproof; judge it with harness.Judge and the checks you want", ErrNoChecks)
	}
	return judgeHistory(h), nil
}

// judgeHistory judges h with its checks, held to its faults and driver.
func judgeHistory(h *History) []Verdict {
	return judgeDriver(h, judgeWithFaults(h, h.Checks))
}

// judgeWithFaults judges h, then holds the verdicts to the faults that
// really reached the environment. When a nemesis step failed, a check that
// passed judged a run without the fault it is about: it becomes not
// applicable, never passed. The failed steps themselves get one verdict:
// not applicable when the environment cannot inject that kind of fault (no
// fake service's admin API behind a remote environment), failed otherwise
// (the environment was asked for a fault it should have injected).
func judgeWithFaults(h *History, checks []Check) []Verdict {
	verdicts := Judge(h, checks...)
	var failed []string
	unsupported := true
	for _, st := range h.Steps {
		if st.Applied() {
			continue
		}
		failed = append(failed, fmt.Sprintf("%q: %s", st.Step.Label, st.Err))
		if st.Outcome != StepUnsupported {
			unsupported = false
		}
	}
	if len(failed) == 0 {
		return verdicts
	}
	why := "the fault was not applied (" + strings.Join(failed, "; ") + ")"
	for i, v := range verdicts {
		if v.Status == StatusPass {
			verdicts[i] = v.NotApplicable("not judged: " + why + ", so the run had no fault to judge")
		}
	}
	nv := Verdict{Check: CheckNemesis, Scenario: h.Scenario, Seed: h.Seed}
	if unsupported {
		return append(verdicts, nv.NotApplicable("this environment cannot inject the scenario's faults: "+why))
	}
	return append(verdicts, nv.Fail(float64(len(failed)), 0, "the environment failed to inject the scenario's faults: "+why+"; fix the environment and certify again"))
}

// judgeDriver holds the verdicts to the driver process the client ran in,
// when it ran in one. A driver that broke the protocol served none of the
// calls after that, so no check may pass on that run: passed verdicts
// become not applicable, and one failed verdict says what the driver did.
// A driver that failed only its idle close or Close (it did not answer
// close, did not exit when told) served the run itself: the verdicts stand
// beside the failed one.
func judgeDriver(h *History, verdicts []Verdict) []Verdict {
	ps := h.Leaks.Processes
	if len(ps) == 0 {
		return verdicts
	}
	v := NewVerdict(CheckDriver, h, "protocol errors")
	var (
		broken   []string
		problems []string
		names    []string
	)
	for _, p := range ps {
		name := p.Command
		if p.Client != "" {
			name = p.Client + " (" + p.Command + ")"
		}
		names = append(names, name)
		if p.Broken != "" {
			broken = append(broken, p.Broken)
			problems = append(problems, p.Broken)
		}
	}
	for _, tc := range h.Teardown {
		if tc.Err != "" && !slices.Contains(problems, tc.Err) {
			problems = append(problems, tc.Method+": "+tc.Err)
		}
	}
	if len(problems) == 0 {
		return append(verdicts, v.Pass(0, 0, "the driver "+strings.Join(names, ", ")+" kept to the protocol and exited when told"))
	}
	if len(broken) > 0 {
		why := "the driver broke the protocol (" + strings.Join(broken, "; ") + ")"
		for i, vd := range verdicts {
			if vd.Status == StatusPass {
				verdicts[i] = vd.NotApplicable("not judged: " + why + ", so the calls after that reached no client")
			}
		}
	}
	return append(verdicts, v.Fail(float64(len(problems)), 0, strings.Join(problems, "; ")))
}
