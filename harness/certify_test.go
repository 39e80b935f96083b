package harness_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

func leakAndHangChecks() harness.Checks {
	return append(harness.Checks(check.Leaks()), check.NoHang{})
}

// tinyScenario is a short, fault-free run over the whole mix.
func tinyScenario(name string, d time.Duration, steps ...harness.Step) harness.Scenario {
	return harness.Scenario{
		Name:     name,
		Proves:   "the test harness can certify a plain client",
		Family:   harness.FamilyLeak,
		Seed:     11,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: d, Workers: 2, Mix: harness.Mix{Inventory: 2, Payment: 1, Notification: 1}},
		Steps:    steps,
		Checks:   leakAndHangChecks(),
	}
}

// progressLog collects progress reports; Certify calls it from one
// goroutine at a time, but the test reads it from another.
type progressLog struct {
	mu   sync.Mutex
	seen []harness.CertifyProgress
}

func (l *progressLog) add(p harness.CertifyProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, p)
}

func (l *progressLog) all() []harness.CertifyProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]harness.CertifyProgress(nil), l.seen...)
}

func TestCertifyJudgesEveryScenarioAndReportsProgress(t *testing.T) {
	env := newEmbeddedEnv(t)
	scenarios := []harness.Scenario{
		tinyScenario("tiny-a", 500*time.Millisecond),
		tinyScenario("tiny-b", 500*time.Millisecond,
			harness.Step{At: 100 * time.Millisecond, Label: "latency 20ms on inventory", Action: harness.AddToxic(fakeservers.Inventory, harness.Latency("", harness.Downstream, 20*time.Millisecond, 0))}),
	}
	var log progressLog
	var runSamples int
	cert, err := harness.Certify(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, harness.DefaultProfile(), scenarios,
		harness.WithCertifyProgress(log.add),
		harness.WithRunOptions(harness.WithProgress(func(harness.Progress) { runSamples++ })))
	require.NoError(t, err)

	require.Len(t, cert.Results, 2)
	assert.Equal(t, "embedded", cert.Environment)
	assert.Zero(t, cert.Seed, "no override")
	assert.False(t, cert.Interrupted)
	assert.Positive(t, cert.Elapsed)
	for i, r := range cert.Results {
		assert.Equal(t, scenarios[i].Name, r.Scenario)
		assert.Equal(t, harness.FamilyLeak, r.Family)
		assert.Equal(t, scenarios[i].Proves, r.Proves)
		assert.Equal(t, int64(11), r.Seed)
		require.NotNil(t, r.History)
		assert.NotEmpty(t, r.History.Calls)
		assert.GreaterOrEqual(t, r.Elapsed, 500*time.Millisecond)
		ids := make([]string, 0, len(r.Verdicts))
		for _, v := range r.Verdicts {
			ids = append(ids, v.Check)
			assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
			assert.Equal(t, r.Scenario, v.Scenario)
		}
		assert.Equal(t, scenarios[i].CheckIDs(), ids)
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
		assert.Equal(t, harness.PhaseStart, phases[idx][0])
		assert.Contains(t, phases[idx], harness.PhaseRun)
		assert.Equal(t, harness.PhaseDone, phases[idx][len(phases[idx])-1])
	}
	assert.True(t, stepSeen, "the step label reaches the progress callback")
	last := seen[len(seen)-1]
	assert.Equal(t, harness.PhaseDone, last.Phase)
	assert.Zero(t, last.Remaining, "nothing left after the last scenario")
	assert.Len(t, last.Verdicts, len(cert.Results[1].Verdicts))
	assert.Positive(t, runSamples, "a WithProgress passed through WithRunOptions still runs")
}

func TestCertifySeedOverrideReplacesEveryScenarioSeed(t *testing.T) {
	env := newEmbeddedEnv(t)
	cert, err := harness.Certify(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, harness.DefaultProfile(),
		[]harness.Scenario{tinyScenario("seeded", 300*time.Millisecond)}, harness.WithSeed(4242))
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
	ctx, cancel := context.WithCancel(harnesstest.Ctx(t))
	defer cancel()
	scenarios := []harness.Scenario{
		tinyScenario("first", 300*time.Millisecond),
		tinyScenario("long", 20*time.Second),
		tinyScenario("never", 300*time.Millisecond),
	}
	began := time.Now()
	cert, err := harness.Certify(ctx, env, harnesstest.StdClientFactory, harness.DefaultProfile(), scenarios,
		harness.WithCertifyProgress(func(p harness.CertifyProgress) {
			if p.Scenario == "long" && p.Phase == harness.PhaseRun && p.Run.Calls > 0 {
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
	cert, err := harness.Certify(ctx, env, harnesstest.StdClientFactory, harness.DefaultProfile(), []harness.Scenario{tinyScenario("x", time.Second)})
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
		factory   harness.ClientFactory
		wantCheck string
	}{
		{"the factory fails", func(harness.Service) (harness.Client, error) { return nil, factoryErr }, harness.CheckRun},
		{"the client leaks goroutines", goroutineLeakerFactory(t), "leak.goroutines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := harness.Certify(harnesstest.Ctx(t), env, tt.factory, harness.DefaultProfile(),
				[]harness.Scenario{tinyScenario("one", 300*time.Millisecond), tinyScenario("two", 300*time.Millisecond)})
			require.NoError(t, err)
			require.Len(t, cert.Results, 2, "a failing scenario does not stop the certification")
			assert.False(t, cert.Passed())
			fails := cert.Failures()
			require.NotEmpty(t, fails)
			ids := map[string]bool{}
			for _, v := range fails {
				ids[v.Check] = true
				assert.Equal(t, harness.StatusFail, v.Status)
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
		env       harness.Environment
		factory   harness.ClientFactory
		scenarios []harness.Scenario
		want      error
	}{
		{"no environment", nil, harnesstest.StdClientFactory, []harness.Scenario{good}, harness.ErrInvalidRun},
		{"no factory", env, nil, []harness.Scenario{good}, harness.ErrInvalidRun},
		{"no scenarios", env, harnesstest.StdClientFactory, nil, harness.ErrInvalidScenario},
		{"duplicate names", env, harnesstest.StdClientFactory, []harness.Scenario{good, good}, harness.ErrInvalidScenario},
		{"one invalid scenario", env, harnesstest.StdClientFactory, []harness.Scenario{good, func() harness.Scenario { s := good; s.Name = "bad"; s.Family = "vibes"; return s }()}, harness.ErrInvalidScenario},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			began := time.Now()
			cert, err := harness.Certify(harnesstest.Ctx(t), tt.env, tt.factory, harness.DefaultProfile(), tt.scenarios)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, cert)
			assert.Less(t, time.Since(began), 500*time.Millisecond, "nothing ran")
		})
	}
}

func TestScenarioValidate(t *testing.T) {
	base := tinyScenario("ok", time.Second)
	with := func(f func(*harness.Scenario)) harness.Scenario {
		s := base
		s.Steps = append([]harness.Step(nil), base.Steps...)
		f(&s)
		return s
	}
	step := func(at time.Duration) harness.Step {
		return harness.Step{At: at, Label: "x", Action: harness.DisableProxy(fakeservers.Inventory)}
	}
	tests := []struct {
		name string
		s    harness.Scenario
		ok   bool
	}{
		{"valid", base, true},
		{"valid with a step", with(func(s *harness.Scenario) { s.Steps = []harness.Step{step(500 * time.Millisecond)} }), true},
		{"no name", with(func(s *harness.Scenario) { s.Name = "" }), false},
		{"name with a space", with(func(s *harness.Scenario) { s.Name = "two words" }), false},
		{"unknown family", with(func(s *harness.Scenario) { s.Family = "chaos" }), false},
		{"nothing proved", with(func(s *harness.Scenario) { s.Proves = " " }), false},
		{"no duration", with(func(s *harness.Scenario) { s.Workload.Duration = 0 }), false},
		{"step after the end", with(func(s *harness.Scenario) { s.Steps = []harness.Step{step(time.Second)} }), false},
		{"negative step", with(func(s *harness.Scenario) { s.Steps = []harness.Step{step(-time.Millisecond)} }), false},
		{"step without action", with(func(s *harness.Scenario) { s.Steps = []harness.Step{{At: 0, Label: "nothing"}} }), false},
		{"nil checks", with(func(s *harness.Scenario) { s.Checks = nil }), false},
		{"no checks", with(func(s *harness.Scenario) { s.Checks = nil }), false},
		{"duplicate check", with(func(s *harness.Scenario) {
			s.Checks = harness.Checks{check.NoHang{}, check.NoHang{}}
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, harness.ErrInvalidScenario)
		})
	}
}

func TestScenarioSeedAndSpec(t *testing.T) {
	s := tinyScenario("spec", time.Second, harness.Step{At: 0, Label: "down", Action: harness.DisableProxy(fakeservers.Payment)})
	assert.Equal(t, int64(11), s.EffectiveSeed(0))
	assert.Equal(t, int64(5), s.EffectiveSeed(5))
	s.Seed = 0
	assert.Equal(t, harness.DefaultSeed, s.EffectiveSeed(0))

	p := harness.Profile{Default: harness.Contract{MaxConns: 3}}
	spec := s.Spec(p, 9)
	assert.Equal(t, "spec", spec.Scenario)
	assert.Equal(t, int64(9), spec.Seed)
	assert.Equal(t, p, spec.Profile)
	assert.Equal(t, s.Workload, spec.Workload)
	spec.Steps[0].Label = "changed"
	assert.Equal(t, "down", s.Steps[0].Label, "the spec owns its steps")
}

// onceLibrary stands for a client library that starts one background
// goroutine per process on first use (a metrics flusher, a resolver).
type onceLibrary struct{ inner *http.Client }

var (
	libraryOnce sync.Once
	libraryStop = make(chan struct{})
)

func (l onceLibrary) Do(req *http.Request) (*http.Response, error) {
	libraryOnce.Do(func() { go func() { <-libraryStop }() })
	return l.inner.Do(req)
}

func (l onceLibrary) CloseIdleConnections() { l.inner.CloseIdleConnections() }

func TestCertifyKeepsALibrarysOneOffGoroutineOutOfTheLeakVerdict(t *testing.T) {
	t.Cleanup(func() { close(libraryStop) })
	env := newEmbeddedEnv(t)
	factory := func(svc harness.Service) (harness.Client, error) {
		c, err := harnesstest.StdClientFactory(svc)
		if err != nil {
			return nil, err
		}
		return onceLibrary{inner: c.(*http.Client)}, nil
	}
	cert, err := harness.Certify(harnesstest.Ctx(t), env, factory, harness.DefaultProfile(),
		[]harness.Scenario{tinyScenario("first", 400*time.Millisecond), tinyScenario("second", 400*time.Millisecond)})
	require.NoError(t, err)
	for _, r := range cert.Results {
		v := findVerdict(t, r.Verdicts, check.IDLeakGoroutines)
		assert.Equal(t, harness.StatusPass, v.Status, "%s: %s", r.Scenario, v.Reason)
	}

	// A goroutine per scenario still fails every scenario.
	leaker := goroutineLeakerFactory(t)
	cert, err = harness.Certify(harnesstest.Ctx(t), env, leaker, harness.DefaultProfile(),
		[]harness.Scenario{tinyScenario("first", 400*time.Millisecond), tinyScenario("second", 400*time.Millisecond)})
	require.NoError(t, err)
	for _, r := range cert.Results {
		assert.Equal(t, harness.StatusFail, findVerdict(t, r.Verdicts, check.IDLeakGoroutines).Status, r.Scenario)
	}
}

// flakyReset is an environment whose Reset fails on the calls fail says.
type flakyReset struct {
	harness.Environment
	mu    sync.Mutex
	calls int
	fail  func(call int) bool
}

var errTooManyFiles = errors.New("dial tcp 127.0.0.1:1: socket: too many open files")

func (e *flakyReset) Reset(ctx context.Context, seed int64) error {
	e.mu.Lock()
	e.calls++
	n := e.calls
	e.mu.Unlock()
	if e.fail(n) {
		return errTooManyFiles
	}
	return e.Environment.Reset(ctx, seed)
}

func TestCertifyAlwaysFinishesWhenTheEnvironmentCannotBeReset(t *testing.T) {
	scenarios := []harness.Scenario{tinyScenario("one", 300*time.Millisecond), tinyScenario("two", 300*time.Millisecond), tinyScenario("three", 300*time.Millisecond)}

	t.Run("a reset that fails for a while is retried", func(t *testing.T) {
		// Reset 1 primes the client, 2 is scenario one's, 3 and 4 fail
		// scenario two's first attempts.
		env := &flakyReset{Environment: newEmbeddedEnv(t), fail: func(n int) bool { return n == 3 || n == 4 }}
		cert, err := harness.Certify(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, harness.DefaultProfile(), scenarios)
		require.NoError(t, err)
		require.Len(t, cert.Results, 3)
		assert.True(t, cert.Passed(), "failures: %v", cert.Failures())
		assert.Equal(t, 6, env.calls)
	})

	t.Run("a reset that keeps failing fails the scenarios left", func(t *testing.T) {
		env := &flakyReset{Environment: newEmbeddedEnv(t), fail: func(n int) bool { return n >= 3 }} // after priming and scenario one
		var progress progressLog
		start := time.Now()
		cert, err := harness.Certify(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, harness.DefaultProfile(), scenarios,
			harness.WithResetRetry(400*time.Millisecond), harness.WithCertifyProgress(progress.add))
		require.NoError(t, err, "the certificate is complete, its verdicts say what failed")
		assert.Less(t, time.Since(start), 20*time.Second)
		require.Len(t, cert.Results, 3)
		assert.True(t, cert.Results[0].Passed())
		for _, r := range cert.Results[1:] {
			assert.Nil(t, r.History)
			require.Len(t, r.Verdicts, 1)
			v := r.Verdicts[0]
			assert.Equal(t, harness.CheckRun, v.Check)
			assert.Equal(t, harness.StatusFail, v.Status)
			assert.Equal(t, r.Scenario, v.Scenario)
			assert.Contains(t, v.Reason, "resetting environment embedded before scenario two failed: "+errTooManyFiles.Error())
			assert.Contains(t, v.Reason, "attempts over 400ms")
			assert.Contains(t, v.Reason, "the scenarios from two on were not run")
			assert.Equal(t, v.Reason, r.Err)
		}
		assert.False(t, cert.Passed())
		assert.Greater(t, env.calls, 2, "the failed reset was retried")
		var done []string
		for _, p := range progress.all() {
			if p.Phase == harness.PhaseDone {
				done = append(done, p.Scenario)
			}
		}
		assert.Equal(t, []string{"one", "two", "three"}, done, "every scenario is reported done")
	})
}
