package harness

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
)

func leakAndHangChecks(Profile) []Check { return append(LeakChecks(), NoHangCheck{}) }

// tinyScenario is a short, fault-free run over the whole mix.
func tinyScenario(name string, d time.Duration, steps ...Step) Scenario {
	return Scenario{
		Name:     name,
		Proves:   "the test harness can certify a plain client",
		Family:   FamilyLeak,
		Seed:     11,
		Workload: Workload{Mode: ClosedLoop, Duration: d, Workers: 2, Mix: Mix{Inventory: 2, Payment: 1, Notification: 1}},
		Steps:    steps,
		Checks:   leakAndHangChecks,
	}
}

// progressLog collects progress reports; Certify calls it from one
// goroutine at a time, but the test reads it from another.
type progressLog struct {
	mu   sync.Mutex
	seen []CertifyProgress
}

func (l *progressLog) add(p CertifyProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, p)
}

func (l *progressLog) all() []CertifyProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]CertifyProgress(nil), l.seen...)
}

func TestCertifyJudgesEveryScenarioAndReportsProgress(t *testing.T) {
	env := newEmbeddedEnv(t)
	scenarios := []Scenario{
		tinyScenario("tiny-a", 500*time.Millisecond),
		tinyScenario("tiny-b", 500*time.Millisecond,
			Step{At: 100 * time.Millisecond, Label: "latency 20ms on inventory", Action: AddToxic(fakeservers.Inventory, Latency("", Downstream, 20*time.Millisecond, 0))}),
	}
	var log progressLog
	var runSamples int
	cert, err := Certify(runCtx(t), env, stdClientFactory, DefaultProfile(), scenarios,
		WithCertifyProgress(log.add),
		WithRunOptions(WithProgress(func(Progress) { runSamples++ })))
	require.NoError(t, err)

	require.Len(t, cert.Results, 2)
	assert.Equal(t, "embedded", cert.Environment)
	assert.Zero(t, cert.Seed, "no override")
	assert.False(t, cert.Interrupted)
	assert.Positive(t, cert.Elapsed)
	for i, r := range cert.Results {
		assert.Equal(t, scenarios[i].Name, r.Scenario)
		assert.Equal(t, FamilyLeak, r.Family)
		assert.Equal(t, scenarios[i].Proves, r.Proves)
		assert.Equal(t, int64(11), r.Seed)
		require.NotNil(t, r.History)
		assert.NotEmpty(t, r.History.Calls)
		assert.GreaterOrEqual(t, r.Elapsed, 500*time.Millisecond)
		ids := make([]string, 0, len(r.Verdicts))
		for _, v := range r.Verdicts {
			ids = append(ids, v.Check)
			assert.Equal(t, StatusPass, v.Status, "%s", v)
			assert.Equal(t, r.Scenario, v.Scenario)
		}
		assert.Equal(t, scenarios[i].CheckIDs(DefaultProfile()), ids)
		assert.True(t, r.Passed())
	}
	assert.True(t, cert.Passed(), "failures: %v", cert.Failures())
	assert.Empty(t, cert.Failures())

	// The toxic step of tiny-b ran and was recorded.
	b, ok := cert.Result("tiny-b")
	require.True(t, ok)
	require.Len(t, b.History.Steps, 1)
	assert.Empty(t, b.History.Steps[0].Err)

	seen := log.all()
	require.NotEmpty(t, seen)
	phases := map[int][]string{}
	stepSeen := false
	for _, p := range seen {
		assert.Equal(t, 2, p.Total)
		phases[p.Index] = append(phases[p.Index], p.Phase)
		if p.Step == "latency 20ms on inventory" {
			stepSeen = true
			assert.Equal(t, "tiny-b", p.Scenario)
		}
		assert.GreaterOrEqual(t, p.Remaining, time.Duration(0))
	}
	for _, idx := range []int{1, 2} {
		require.NotEmpty(t, phases[idx], "scenario %d reported", idx)
		assert.Equal(t, PhaseStart, phases[idx][0])
		assert.Contains(t, phases[idx], PhaseRun)
		assert.Equal(t, PhaseDone, phases[idx][len(phases[idx])-1])
	}
	assert.True(t, stepSeen, "the step label reaches the progress callback")
	last := seen[len(seen)-1]
	assert.Equal(t, PhaseDone, last.Phase)
	assert.Zero(t, last.Remaining, "nothing left after the last scenario")
	assert.Len(t, last.Verdicts, len(cert.Results[1].Verdicts))
	assert.Positive(t, runSamples, "a WithProgress passed through WithRunOptions still runs")
}

func TestCertifySeedOverrideReplacesEveryScenarioSeed(t *testing.T) {
	env := newEmbeddedEnv(t)
	cert, err := Certify(runCtx(t), env, stdClientFactory, DefaultProfile(),
		[]Scenario{tinyScenario("seeded", 300*time.Millisecond)}, WithSeedOverride(4242))
	require.NoError(t, err)
	assert.Equal(t, int64(4242), cert.Seed)
	require.Len(t, cert.Results, 1)
	assert.Equal(t, int64(4242), cert.Results[0].Seed)
	assert.Equal(t, int64(4242), cert.Results[0].History.Seed)
	for _, v := range cert.Results[0].Verdicts {
		assert.Equal(t, int64(4242), v.Seed)
	}
}

func TestCertifyCancelStopsWithWhatWasDone(t *testing.T) {
	env := newEmbeddedEnv(t)
	ctx, cancel := context.WithCancel(runCtx(t))
	defer cancel()
	scenarios := []Scenario{
		tinyScenario("first", 300*time.Millisecond),
		tinyScenario("long", 20*time.Second),
		tinyScenario("never", 300*time.Millisecond),
	}
	began := time.Now()
	cert, err := Certify(ctx, env, stdClientFactory, DefaultProfile(), scenarios,
		WithCertifyProgress(func(p CertifyProgress) {
			if p.Scenario == "long" && p.Phase == PhaseRun && p.Run.Calls > 0 {
				cancel()
			}
		}))
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, cert)
	assert.Less(t, time.Since(began), 15*time.Second, "cancel ends the long scenario early")
	assert.True(t, cert.Interrupted)
	assert.False(t, cert.Passed())
	require.Len(t, cert.Results, 2, "the scenario after the cancel never ran")
	assert.True(t, cert.Results[0].Passed())
	long := cert.Results[1]
	assert.True(t, long.Interrupted)
	assert.NotEmpty(t, long.Err)
	assert.Empty(t, long.Verdicts, "a partial history is not judged")
	require.NotNil(t, long.History, "the partial history is kept")
}

func TestCertifyCanceledBeforeStartRunsNothing(t *testing.T) {
	env := newEmbeddedEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cert, err := Certify(ctx, env, stdClientFactory, DefaultProfile(), []Scenario{tinyScenario("x", time.Second)})
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, cert.Interrupted)
	assert.Empty(t, cert.Results)
	assert.False(t, cert.Passed())
}

func TestCertifyFailures(t *testing.T) {
	env := newEmbeddedEnv(t)
	factoryErr := errors.New("no client today")
	tests := []struct {
		name      string
		factory   ClientFactory
		wantCheck string
	}{
		{"the factory fails", func(Service) (Client, error) { return nil, factoryErr }, CheckRun},
		{"the client leaks goroutines", goroutineLeakerFactory(t), "leak.goroutines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := Certify(runCtx(t), env, tt.factory, DefaultProfile(),
				[]Scenario{tinyScenario("one", 300*time.Millisecond), tinyScenario("two", 300*time.Millisecond)})
			require.NoError(t, err)
			require.Len(t, cert.Results, 2, "a failing scenario does not stop the certification")
			assert.False(t, cert.Passed())
			fails := cert.Failures()
			require.NotEmpty(t, fails)
			ids := map[string]bool{}
			for _, v := range fails {
				ids[v.Check] = true
				assert.Equal(t, StatusFail, v.Status)
			}
			assert.True(t, ids[tt.wantCheck], "failures %v", fails)
		})
	}
}

func TestCertifyRefusesBadInput(t *testing.T) {
	env := newEmbeddedEnv(t)
	good := tinyScenario("good", time.Second)
	tests := []struct {
		name      string
		env       Environment
		factory   ClientFactory
		scenarios []Scenario
		want      error
	}{
		{"no environment", nil, stdClientFactory, []Scenario{good}, ErrInvalidRun},
		{"no factory", env, nil, []Scenario{good}, ErrInvalidRun},
		{"no scenarios", env, stdClientFactory, nil, ErrInvalidScenario},
		{"duplicate names", env, stdClientFactory, []Scenario{good, good}, ErrInvalidScenario},
		{"one invalid scenario", env, stdClientFactory, []Scenario{good, func() Scenario { s := good; s.Name = "bad"; s.Family = "vibes"; return s }()}, ErrInvalidScenario},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			began := time.Now()
			cert, err := Certify(runCtx(t), tt.env, tt.factory, DefaultProfile(), tt.scenarios)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, cert)
			assert.Less(t, time.Since(began), 500*time.Millisecond, "nothing ran")
		})
	}
}

func TestScenarioValidate(t *testing.T) {
	base := tinyScenario("ok", time.Second)
	with := func(f func(*Scenario)) Scenario {
		s := base
		s.Steps = append([]Step(nil), base.Steps...)
		f(&s)
		return s
	}
	step := func(at time.Duration) Step {
		return Step{At: at, Label: "x", Action: DisableProxy(fakeservers.Inventory)}
	}
	tests := []struct {
		name string
		s    Scenario
		ok   bool
	}{
		{"valid", base, true},
		{"valid with a step", with(func(s *Scenario) { s.Steps = []Step{step(500 * time.Millisecond)} }), true},
		{"no name", with(func(s *Scenario) { s.Name = "" }), false},
		{"name with a space", with(func(s *Scenario) { s.Name = "two words" }), false},
		{"unknown family", with(func(s *Scenario) { s.Family = "chaos" }), false},
		{"nothing proved", with(func(s *Scenario) { s.Proves = " " }), false},
		{"no duration", with(func(s *Scenario) { s.Workload.Duration = 0 }), false},
		{"step after the end", with(func(s *Scenario) { s.Steps = []Step{step(time.Second)} }), false},
		{"negative step", with(func(s *Scenario) { s.Steps = []Step{step(-time.Millisecond)} }), false},
		{"step without action", with(func(s *Scenario) { s.Steps = []Step{{At: 0, Label: "nothing"}} }), false},
		{"nil checks", with(func(s *Scenario) { s.Checks = nil }), false},
		{"no checks", with(func(s *Scenario) { s.Checks = func(Profile) []Check { return nil } }), false},
		{"duplicate check", with(func(s *Scenario) {
			s.Checks = func(Profile) []Check { return []Check{NoHangCheck{}, NoHangCheck{}} }
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidScenario)
		})
	}
}

func TestScenarioSeedAndSpec(t *testing.T) {
	s := tinyScenario("spec", time.Second, Step{At: 0, Label: "down", Action: DisableProxy(fakeservers.Payment)})
	assert.Equal(t, int64(11), s.EffectiveSeed(0))
	assert.Equal(t, int64(5), s.EffectiveSeed(5))
	s.Seed = 0
	assert.Equal(t, DefaultSeed, s.EffectiveSeed(0))

	p := Profile{Default: Contract{MaxConns: 3}}
	spec := s.Spec(p, 9)
	assert.Equal(t, "spec", spec.Scenario)
	assert.Equal(t, int64(9), spec.Seed)
	assert.Equal(t, p, spec.Profile)
	assert.Equal(t, s.Workload, spec.Workload)
	spec.Steps[0].Label = "changed"
	assert.Equal(t, "down", s.Steps[0].Label, "the spec owns its steps")
}

func TestEstimatorRemaining(t *testing.T) {
	e := newEstimator([]Scenario{
		{Workload: Workload{Duration: 2 * time.Second}},
		{Workload: Workload{Duration: 3 * time.Second}},
	})
	// Before anything finished the default overhead is assumed.
	assert.Equal(t, 2*time.Second+defaultOverhead+3*time.Second+defaultOverhead, e.remaining(0, 0, false))
	assert.Equal(t, 3*time.Second+defaultOverhead, e.remaining(0, 0, true))
	// The first took 2.5s: 500ms of overhead, applied to the next.
	e.done(0, 2500*time.Millisecond)
	assert.Equal(t, 3500*time.Millisecond, e.remaining(1, 0, false))
	assert.Equal(t, 500*time.Millisecond, e.remaining(1, 3*time.Second, false))
	assert.Zero(t, e.remaining(1, 10*time.Second, false), "never negative")
	assert.Zero(t, e.remaining(1, 0, true))
}

// fixedCheck returns the same verdict status for any history.
type fixedCheck struct {
	id     string
	status Status
}

func (c fixedCheck) ID() string { return c.id }
func (c fixedCheck) Judge(h *History) Verdict {
	v := verdict(c.id, h, "")
	if c.status == StatusFail {
		return v.fail(1, 0, "broken")
	}
	return v.pass(0, 0, "fine")
}

func TestJudgeWithFaultsNeverPassesARunWhoseFaultWasNotApplied(t *testing.T) {
	checks := []Check{fixedCheck{"a", StatusPass}, fixedCheck{"b", StatusFail}}
	step := func(err string) StepRecord {
		return StepRecord{Step: Step{Label: "payment answers 503", Action: SetHTTPFaults("payment")}, Err: err}
	}
	for _, tc := range []struct {
		name       string
		steps      []StepRecord
		wantA      Status
		wantNem    Status
		wantReason string
	}{
		{"every fault applied", []StepRecord{step("")}, StatusPass, "", ""},
		{"the environment cannot inject it", []StepRecord{step("set_http_faults payment: " + ErrNoServerTruth.Error())},
			StatusNotApplicable, StatusNotApplicable, `this environment cannot inject the scenario's faults: the fault was not applied ("payment answers 503"`},
		{"the environment failed to inject it", []StepRecord{step("toxiproxy: context deadline exceeded")},
			StatusNotApplicable, StatusFail, "the environment failed to inject the scenario's faults"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &History{Scenario: "s", Seed: 3, Steps: tc.steps}
			vs := judgeWithFaults(h, checks)
			require.GreaterOrEqual(t, len(vs), 2)
			assert.Equal(t, tc.wantA, vs[0].Status, "a passing check: %s", vs[0].Reason)
			assert.Equal(t, StatusFail, vs[1].Status, "a failure stays a failure")
			if tc.wantNem == "" {
				assert.Len(t, vs, 2)
				return
			}
			require.Len(t, vs, 3)
			assert.Equal(t, CheckNemesis, vs[2].Check)
			assert.Equal(t, tc.wantNem, vs[2].Status)
			assert.Contains(t, vs[2].Reason, tc.wantReason)
			assert.Contains(t, vs[0].Reason, "so the run had no fault to judge")
			r := ScenarioResult{Verdicts: vs}
			assert.False(t, r.Passed())
		})
	}
}
