package explore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

// bigCase has three faults on two services, 8 workers for 6s.
func bigCase() harness.Scenario {
	inv, pay := fakeservers.Inventory, fakeservers.Payment
	return harness.Scenario{
		Name: "big", Proves: "a case to shrink", Family: harness.FamilyTimeout, Seed: 9,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: 6 * time.Second, Workers: 8,
			Mix: harness.Mix{Inventory: 2, Payment: 1}},
		Steps: []harness.Step{
			{At: 500 * time.Millisecond, Label: "[f1] latency", Action: harness.AddToxic(inv, harness.Latency("lat", harness.Downstream, 400*time.Millisecond, 0, harness.WithToxicity(0.8)))},
			{At: time.Second, Label: "[f2] blackhole", Action: harness.AddToxic(inv, harness.Timeout("bh", harness.Downstream, 0, harness.WithToxicity(0.6)))},
			{At: 1500 * time.Millisecond, Label: "[f3] 503s", Action: harness.SetHTTPFaults(pay, fakeservers.Fault{Name: "f3", Kind: fakeservers.FaultStatus, Probability: 0.5, Status: 503})},
			{At: 3 * time.Second, Label: "[f1] latency removed", Action: harness.RemoveToxic(inv, "lat")},
			{At: 4 * time.Second, Label: "[f3] over", Action: harness.ClearHTTPFaults(pay)},
			{At: 5 * time.Second, Label: "[f2] blackhole removed", Action: harness.RemoveToxic(inv, "bh")},
		},
		Checks: harness.Checks{check.NoHang{}, check.RequestBound{}, check.PoolBound{}, check.Ledger{}},
	}
}

// blackholeLongerThan is a deterministic predicate standing in for a
// client without a timeout: it fails timeout.request_bound while the
// case holds a blackhole on inventory for at least d.
func blackholeLongerThan(d time.Duration, runs *int) RunnerFunc {
	return func(_ context.Context, s harness.Scenario) (Outcome, error) {
		*runs++
		for _, g := range faultGroups(s.Steps) {
			on, off := s.Steps[g[0]], s.Steps[g[len(g)-1]]
			if on.Action.Toxic != nil && on.Action.Toxic.Type == harness.ToxicTimeout && on.Action.Service == fakeservers.Inventory &&
				off.At-on.At >= d && slices.Contains(s.CheckIDs(), check.IDTimeoutRequestBound) {
				return Outcome{Failed: []string{check.IDTimeoutRequestBound},
					Verdicts: []harness.Verdict{{Check: check.IDTimeoutRequestBound, Status: harness.StatusFail, Reason: "a call took 4s"}}}, nil
			}
		}
		return Outcome{}, nil
	}
}

func TestShrinkReducesToTheFaultThatMatters(t *testing.T) {
	runs := 0
	var steps []ShrinkStep
	res, err := Shrink(context.Background(), blackholeLongerThan(time.Second, &runs), bigCase(), check.IDTimeoutRequestBound, nil,
		ShrinkOptions{Progress: func(s ShrinkStep) { steps = append(steps, s) }})
	require.NoError(t, err)
	s := res.Shrunk
	require.NoError(t, s.Validate())
	assert.Equal(t, 1, res.After.Faults, "only the blackhole is left: %+v", s.Steps)
	assert.Len(t, s.Steps, 2)
	assert.Equal(t, harness.ToxicTimeout, s.Steps[0].Action.Toxic.Type)
	assert.Less(t, s.Steps[1].At-s.Steps[0].At, 2*time.Second, "the window was shortened")
	assert.GreaterOrEqual(t, s.Steps[1].At-s.Steps[0].At, time.Second, "but not below what fails")
	assert.Less(t, res.After.Duration, res.Before.Duration)
	assert.Equal(t, 1, s.Workload.Workers)
	assert.Equal(t, 0, s.Workload.Mix.Payment, "payment dropped")
	assert.Equal(t, []string{check.IDTimeoutRequestBound}, s.CheckIDs())
	assert.Equal(t, res.FinalRuns, res.FinalFailed)
	assert.Equal(t, 10, res.FinalRuns)
	assert.Empty(t, res.Stopped)
	assert.Len(t, steps, res.Attempts)
	assert.Positive(t, res.Attempts)
	assert.Equal(t, runs, res.Runs)

	sentence := Sentence("no-timeouts", res)
	assert.Contains(t, sentence, "client no-timeouts fails timeout.request_bound with blackhole")
	assert.Contains(t, sentence, "2 steps")
	assert.Contains(t, sentence, "1 workers")
}

func TestShrinkRefusesAReductionThatDoesNotReproduce(t *testing.T) {
	// Fails only while the blackhole is there AND the workload has at
	// least 6 workers: no reduction below 6 workers may be kept.
	runs := 0
	inner := blackholeLongerThan(time.Second, &runs)
	r := RunnerFunc(func(ctx context.Context, s harness.Scenario) (Outcome, error) {
		out, err := inner(ctx, s)
		if s.Workload.Workers < 6 {
			return Outcome{}, err
		}
		return out, err
	})
	res, err := Shrink(context.Background(), r, bigCase(), check.IDTimeoutRequestBound, nil, ShrinkOptions{})
	require.NoError(t, err)
	assert.Equal(t, 6, res.Shrunk.Workload.Workers)
	for _, k := range res.Kept {
		assert.NotContains(t, k, "4 workers")
		assert.NotContains(t, k, "1 workers")
	}
}

func TestShrinkNeedsEveryConfirmingRunToFail(t *testing.T) {
	// A flaky failure: a reduction fails on its first run and passes on
	// its second, so no reduction is confirmed by two runs in a row.
	seen := map[string]int{}
	original := fingerprint(bigCase())
	r := RunnerFunc(func(_ context.Context, s harness.Scenario) (Outcome, error) {
		key := fingerprint(s)
		seen[key]++
		if key == original || seen[key] == 1 {
			return Outcome{Failed: []string{check.IDNoHang}}, nil
		}
		return Outcome{}, nil
	})
	res, err := Shrink(context.Background(), r, bigCase(), check.IDNoHang, nil, ShrinkOptions{Final: -1})
	require.NoError(t, err)
	assert.Equal(t, SizeOf(bigCase()), res.After, "nothing kept: kept %v", res.Kept)
}

func TestShrinkOfAFailureThatDoesNotReproduce(t *testing.T) {
	r := RunnerFunc(func(context.Context, harness.Scenario) (Outcome, error) { return Outcome{}, nil })
	_, err := Shrink(context.Background(), r, bigCase(), check.IDNoHang, nil, ShrinkOptions{})
	assert.ErrorIs(t, err, ErrNotReproduced)
}

func TestShrinkStopsAtItsBounds(t *testing.T) {
	runs := 0
	res, err := Shrink(context.Background(), blackholeLongerThan(time.Second, &runs), bigCase(), check.IDTimeoutRequestBound, nil,
		ShrinkOptions{MaxAttempts: 2, Final: -1})
	require.NoError(t, err)
	assert.Equal(t, "attempts", res.Stopped)
	assert.Equal(t, 2, res.Attempts)

	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	r := RunnerFunc(func(ctx context.Context, s harness.Scenario) (Outcome, error) {
		calls++
		if calls == 3 {
			cancel()
			return Outcome{}, ctx.Err()
		}
		return Outcome{Failed: []string{check.IDNoHang}}, nil
	})
	res, err = Shrink(ctx, r, bigCase(), check.IDNoHang, nil, ShrinkOptions{})
	require.NoError(t, err)
	assert.Equal(t, "interrupted", res.Stopped)
	assert.Zero(t, res.FinalRuns, "no final reruns once interrupted")
}

func TestExploreFindsShrinksAndStops(t *testing.T) {
	// A fake client that fails request_bound on any blackhole of 1s or more.
	runs := 0
	r := blackholeLongerThan(time.Second, &runs)
	var events []string
	sum := Explore(context.Background(), r, Options{Seed: 5, Budget: time.Hour, MaxFindings: 1,
		Progress: func(e Event) { events = append(events, e.Kind) }})
	require.Len(t, sum.Findings, 1)
	f := sum.Findings[0]
	assert.Equal(t, check.IDTimeoutRequestBound, f.Check)
	require.NotNil(t, f.Shrink)
	assert.Equal(t, 1, f.Shrink.After.Faults)
	assert.Equal(t, f.Index+1, sum.Cases)
	assert.Contains(t, events, EventFinding)
	assert.Contains(t, events, EventShrunk)
	assert.Positive(t, sum.ShrinkSteps)
	assert.False(t, sum.Interrupted)
}

func TestExploreEndsWithItsBudgetOrContext(t *testing.T) {
	slow := RunnerFunc(func(ctx context.Context, s harness.Scenario) (Outcome, error) {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		}
		return Outcome{}, nil
	})
	sum := Explore(context.Background(), slow, Options{Seed: 1, Budget: 100 * time.Millisecond})
	assert.InDelta(t, 5, sum.Cases, 2)
	assert.Empty(t, sum.Findings)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	sum = Explore(ctx, slow, Options{Seed: 1, Budget: time.Hour})
	assert.True(t, sum.Interrupted)
}

func TestTroubledRunsAreNotFindings(t *testing.T) {
	n := 0
	r := RunnerFunc(func(context.Context, harness.Scenario) (Outcome, error) {
		n++
		if n > 5 {
			return Outcome{}, errors.New("stop")
		}
		return Outcome{Trouble: "harness.nemesis: a step failed"}, nil
	})
	sum := Explore(context.Background(), r, Options{Seed: 1, Budget: 50 * time.Millisecond})
	assert.Zero(t, sum.Cases)
	assert.Positive(t, sum.Troubled)
	assert.Empty(t, sum.Findings)
}

func TestShrinkStepsBackFromAKnifeEdge(t *testing.T) {
	// Below 4 workers the failure shows on a case's first run only: with
	// one confirming run the shrink keeps such a reduction, and the final
	// reruns must undo it.
	seen := map[string]int{}
	runs := 0
	inner := blackholeLongerThan(time.Second, &runs)
	r := RunnerFunc(func(ctx context.Context, s harness.Scenario) (Outcome, error) {
		key := fingerprint(s)
		seen[key]++
		if s.Workload.Workers < 4 && seen[key] > 1 {
			return Outcome{}, nil
		}
		return inner(ctx, s)
	})
	res, err := Shrink(context.Background(), r, bigCase(), check.IDTimeoutRequestBound, nil, ShrinkOptions{Confirm: 1})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, res.Shrunk.Workload.Workers, 4)
	assert.Positive(t, res.SteppedBack)
	assert.Equal(t, 10, res.FinalRuns)
	assert.Equal(t, 10, res.FinalFailed)
}
