package scenarios_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/scenarios"
)

func names(list []harness.Scenario) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.Name
	}
	return out
}

func TestEveryScenarioIsValid(t *testing.T) {
	known := check.AllIDs()
	for _, list := range []struct {
		name string
		s    []harness.Scenario
	}{{"standard", scenarios.Standard()}, {"quick", scenarios.Quick()}} {
		t.Run(list.name, func(t *testing.T) {
			require.NotEmpty(t, list.s)
			seen := map[string]bool{}
			for _, s := range list.s {
				require.NoError(t, s.Validate())
				assert.False(t, seen[s.Name], "name %q twice", s.Name)
				seen[s.Name] = true
				assert.Contains(t, harness.Families, s.Family, s.Name)
				assert.NotZero(t, s.Seed, "%s: a seed of its own, printed with every verdict", s.Name)
				for _, st := range s.Steps {
					assert.Less(t, st.At, s.Workload.Duration, "%s: step %q inside the duration", s.Name, st.Label)
					assert.NotEmpty(t, st.Label, "%s: every step is labelled for progress and timelines", s.Name)
				}
				ids := s.CheckIDs()
				require.NotEmpty(t, ids, s.Name)
				for _, id := range []string{check.IDLeakGoroutines, check.IDLeakFDs, check.IDLeakServerConns} {
					assert.Contains(t, ids, id, "%s: the leak checks run everywhere", s.Name)
				}
				assert.Contains(t, ids, check.IDNoHang, s.Name)
				for _, id := range ids {
					assert.Contains(t, known, id, "%s: check %q is one the harness documents", s.Name, id)
				}
			}
		})
	}
}

func TestQuickIsAShorterSubsetOfStandard(t *testing.T) {
	std := map[string]harness.Scenario{}
	for _, s := range scenarios.Standard() {
		std[s.Name] = s
	}
	quick := scenarios.Quick()
	assert.Less(t, len(quick), len(std))
	var total time.Duration
	for _, q := range quick {
		s, ok := std[q.Name]
		require.True(t, ok, "%s is a Standard scenario", q.Name)
		assert.LessOrEqual(t, q.Workload.Duration, s.Workload.Duration, q.Name)
		assert.Equal(t, s.Family, q.Family)
		assert.Equal(t, s.CheckIDs(), q.CheckIDs(), "%s judges the same properties", q.Name)
		total += q.Workload.Duration
	}
	// The workload time leaves room for the harness's own per-scenario
	// overhead in the 15s budget.
	assert.LessOrEqual(t, total, 10*time.Second)
	var stdTotal time.Duration
	for _, s := range std {
		stdTotal += s.Workload.Duration
	}
	assert.LessOrEqual(t, stdTotal, 55*time.Second, "the Standard workload time leaves room in the 75s budget")
}

// Every property the harness can judge is judged by some Standard scenario.
func TestStandardCoversEveryCheck(t *testing.T) {
	used := map[string]bool{}
	for _, s := range scenarios.Standard() {
		for _, id := range s.CheckIDs() {
			used[id] = true
		}
	}
	for _, id := range check.AllIDs() {
		assert.True(t, used[id], "no Standard scenario judges %s", id)
	}
}

// The recovery checks need the run to go on past the fault's end plus the
// declared recovery time, with a tail to measure; a schedule that does not
// leave it would make them not applicable, never failed.
func TestRecoveryScenariosLeaveRoomToMeasure(t *testing.T) {
	const tail = 500 * time.Millisecond // the recovery checks' default MinSpan
	p := reference.Profile()
	for _, s := range scenarios.Standard() {
		ids := s.CheckIDs()
		if !slices.Contains(ids, check.IDRecoveryThroughput) && !slices.Contains(ids, check.IDRecoveryLatency) {
			continue
		}
		var last time.Duration
		var svc string
		for _, st := range s.Steps {
			if st.At >= last {
				last, svc = st.At, st.Action.Service
			}
		}
		need := last + p.For(svc).RecoveryTime + tail
		assert.Greater(t, s.Workload.Duration, need, "%s: fault ends at %v, %s recovers within %v", s.Name, last, svc, p.For(svc).RecoveryTime)
		first := s.Steps[0].At
		assert.GreaterOrEqual(t, first*4/5, tail, "%s: a baseline before the first fault", s.Name)
	}
}

func TestLookupNamesSelect(t *testing.T) {
	all := scenarios.Names()
	assert.Equal(t, names(scenarios.Standard()), all)
	for _, n := range all {
		s, err := scenarios.Lookup(n)
		require.NoError(t, err)
		assert.Equal(t, n, s.Name)
	}
	_, err := scenarios.Lookup("no-such-thing")
	require.ErrorIs(t, err, scenarios.ErrUnknownScenario)
	assert.ErrorContains(t, err, scenarios.Baseline, "the error lists the names")

	tests := []struct {
		in   []string
		want []string
		err  error
	}{
		{nil, all, nil},
		{[]string{scenarios.Blackhole, scenarios.Baseline}, []string{scenarios.Baseline, scenarios.Blackhole}, nil},
		{[]string{scenarios.Baseline, "nope"}, nil, scenarios.ErrUnknownScenario},
	}
	for _, tt := range tests {
		got, err := scenarios.Select(tt.in...)
		if tt.err != nil {
			require.ErrorIs(t, err, tt.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, names(got), "catalog order")
	}
}

func TestReferenceProfileMatchesItsConfigs(t *testing.T) {
	p := reference.Profile()
	for _, c := range reference.Configs() {
		k := p.For(c.Name)
		assert.Equal(t, c.MaxConnsPerHost, k.MaxConns, c.Name)
		assert.Equal(t, c.PoolWait, k.PoolWait, c.Name)
		assert.Equal(t, c.RequestTimeout, k.RequestTimeout, c.Name)
		assert.Equal(t, c.Retry.MaxAttempts, k.MaxAttempts, c.Name)
		assert.Equal(t, c.Breaker.OpenDelay, k.BreakerOpenDelay, c.Name)
		assert.Equal(t, c.Breaker.HalfOpenProbes, k.HalfOpenProbes, c.Name)
		assert.Greater(t, k.RecoveryTime, c.Breaker.OpenDelay, "%s: recovery waits out an open breaker", c.Name)
	}
}

// A scenario is data: every catalog scenario, checks and bounds included,
// saves as JSON and loads back unchanged.
func TestEveryScenarioRoundTripsThroughJSON(t *testing.T) {
	for _, list := range [][]harness.Scenario{scenarios.Standard(), scenarios.Quick(), scenarios.Soak()} {
		for _, s := range list {
			b, err := json.Marshal(s)
			require.NoError(t, err, s.Name)
			var back harness.Scenario
			require.NoError(t, json.Unmarshal(b, &back), s.Name)
			assert.Equal(t, s, back, "%s round-trips through JSON", s.Name)
			require.NoError(t, back.Validate(), s.Name)
		}
	}
}
