package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	v := NewVerdict(c.id, h, "")
	if c.status == StatusFail {
		return v.Fail(1, 0, "broken")
	}
	return v.Pass(0, 0, "fine")
}

func TestJudgeWithFaultsNeverPassesARunWhoseFaultWasNotApplied(t *testing.T) {
	checks := []Check{fixedCheck{"a", StatusPass}, fixedCheck{"b", StatusFail}}
	step := func(outcome StepOutcome, err string) StepRecord {
		return StepRecord{Step: Step{Label: "payment answers 503", Action: SetHTTPFaults("payment")}, Outcome: outcome, Err: err}
	}
	for _, tc := range []struct {
		name       string
		steps      []StepRecord
		wantA      Status
		wantNem    Status
		wantReason string
	}{
		{"every fault applied", []StepRecord{step(StepApplied, "")}, StatusPass, "", ""},
		{"the environment cannot inject it", []StepRecord{step(StepUnsupported, "set_http_faults payment: "+ErrNoServerTruth.Error())},
			StatusNotApplicable, StatusNotApplicable, `this environment cannot inject the scenario's faults: the fault was not applied ("payment answers 503"`},
		{"the environment failed to inject it", []StepRecord{step(StepFailed, "toxiproxy: context deadline exceeded")},
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

// panickingCheck stands for a check with a bug, or one handed a malformed
// history loaded from disk.
type panickingCheck struct{}

func (panickingCheck) ID() string { return "test.panics" }
func (panickingCheck) Judge(h *History) Verdict {
	return NewVerdict("test.panics", h, "").Pass(float64(len(h.Calls[7:])), 0, "unreachable")
}

func TestJudgeTurnsAPanicIntoAFailedVerdictAndJudgesTheRest(t *testing.T) {
	h := &History{Scenario: "s", Seed: 3}
	vs := Judge(h, fixedCheck{"a", StatusPass}, panickingCheck{}, nil, fixedCheck{"b", StatusPass})
	require.Len(t, vs, 4)
	assert.Equal(t, StatusPass, vs[0].Status)
	assert.Equal(t, "test.panics", vs[1].Check, "the verdict names the check that panicked")
	assert.Equal(t, StatusFail, vs[1].Status)
	assert.Contains(t, vs[1].Reason, "the check panicked while judging this history")
	assert.Contains(t, vs[1].Reason, "out of range")
	assert.Equal(t, "s", vs[1].Scenario)
	assert.Equal(t, StatusFail, vs[2].Status, "a nil check fails, it does not crash")
	assert.Equal(t, StatusPass, vs[3].Status, "the checks after a panic still run")
}

func TestJudgeDriverNeverPassesARunTheDriverBroke(t *testing.T) {
	checks := []Check{fixedCheck{"a", StatusPass}, fixedCheck{"b", StatusFail}}
	driver := ProcessLeaks{Command: "python3 client.py", PID: 7, Client: "requests 2.31", Measured: true}
	for _, tc := range []struct {
		name       string
		broken     string
		teardown   []TeardownCall
		wantA      Status
		wantDriver Status
		wantReason string
	}{
		{"kept to the protocol", "", nil, StatusPass, StatusPass, "the driver requests 2.31 (python3 client.py) kept to the protocol and exited when told"},
		{"crashed mid-run", "driver exited with status 1 with 3 calls unanswered", []TeardownCall{{Method: "Close", Err: "driver exited with status 1 with 3 calls unanswered"}},
			StatusNotApplicable, StatusFail, "driver exited with status 1 with 3 calls unanswered"},
		{"slow exit", "", []TeardownCall{{Method: "Close", Err: "did not exit within 2s of shutdown"}}, StatusPass, StatusFail, "Close: did not exit within 2s of shutdown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := driver
			p.Broken = tc.broken
			h := &History{Scenario: "s", Teardown: tc.teardown, Leaks: LeakRecord{Processes: []ProcessLeaks{p}}}
			vs := judgeDriver(h, Judge(h, checks...))
			require.Len(t, vs, 3)
			assert.Equal(t, tc.wantA, vs[0].Status)
			assert.Equal(t, StatusFail, vs[1].Status, "a failure stands")
			assert.Equal(t, CheckDriver, vs[2].Check)
			assert.Equal(t, tc.wantDriver, vs[2].Status)
			assert.Equal(t, tc.wantReason, vs[2].Reason, "the crash is named once")
		})
	}
	t.Run("a client in this process gets no driver verdict", func(t *testing.T) {
		h := &History{Scenario: "s"}
		assert.Len(t, judgeDriver(h, Judge(h, checks...)), 2)
	})
}

func TestFitToStretchesWindowsToTheDeclaredContract(t *testing.T) {
	s := Scenario{
		Name: "hole", Workload: Workload{Duration: 4 * time.Second, Mix: Mix{Inventory: 1}},
		Steps: []Step{
			{At: 300 * time.Millisecond, Action: DisableProxy("inventory")},
			{At: 3800 * time.Millisecond, Action: EnableProxy("inventory")},
		},
		Stretch: []Stretch{{From: 300 * time.Millisecond, Until: 3800 * time.Millisecond, Need: NeedRequestTimeout, Factor: 1.25, Plus: time.Second}},
	}
	declare := func(rt time.Duration) Profile { return Profile{Default: Contract{RequestTimeout: rt}} }

	same := s.FitTo(declare(2 * time.Second)) // 2.5s + 1s: the window already lasts 3.5s
	assert.Equal(t, s.Steps, same.Steps)
	assert.Equal(t, s.Workload.Duration, same.Workload.Duration)
	assert.Equal(t, s.Workload.Duration, s.FitTo(Profile{}).Workload.Duration, "nothing declared, nothing stretched")

	long := s.FitTo(declare(10 * time.Second)) // 12.5s + 1s = 13.5s: 10s more
	assert.Equal(t, 300*time.Millisecond, long.Steps[0].At, "steps before the window stay")
	assert.Equal(t, 13800*time.Millisecond, long.Steps[1].At, "the fault ends later")
	assert.Equal(t, 14*time.Second, long.Workload.Duration)
	assert.Equal(t, 3800*time.Millisecond, s.Steps[1].At, "the scenario itself is unchanged")
	assert.Less(t, long.Steps[1].At, long.Workload.Duration)

	capped := s.FitTo(declare(time.Hour))
	assert.Equal(t, MaxStretchedDuration, capped.Workload.Duration, "a contract of an hour is capped")
}
