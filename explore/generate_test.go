package explore

import (
	"github.com/poolproof/poolproof/brokenclients"
	"github.com/poolproof/poolproof/fakeservers"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	_ "github.com/poolproof/poolproof/harness/check" // registers the checks a scenario file names
)

func TestSameSeedSameSchedule(t *testing.T) {
	for _, seed := range []uint64{1, 7, 20240601} {
		for i := range 20 {
			a, err := harness.MarshalScenarios([]harness.Scenario{Generate(seed, i)})
			require.NoError(t, err)
			b, err := harness.MarshalScenarios([]harness.Scenario{Generate(seed, i)})
			require.NoError(t, err)
			assert.Equal(t, string(a), string(b), "seed %d case %d", seed, i)
		}
	}
	a, _ := harness.MarshalScenarios([]harness.Scenario{Generate(1, 0)})
	b, _ := harness.MarshalScenarios([]harness.Scenario{Generate(2, 0)})
	c, _ := harness.MarshalScenarios([]harness.Scenario{Generate(1, 1)})
	assert.NotEqual(t, string(a), string(b), "different seeds, different cases")
	assert.NotEqual(t, string(a), string(c), "different cases of one seed differ")
}

func TestGeneratedCasesRespectBoundsAndRoundTrip(t *testing.T) {
	for i := range 400 {
		s := Generate(42, i)
		require.NoError(t, s.Validate(), "case %d", i)
		assert.GreaterOrEqual(t, s.Workload.Duration, MinDuration, "case %d", i)
		assert.LessOrEqual(t, s.Workload.Duration, MaxDuration, "case %d", i)
		assert.Positive(t, s.Seed)
		for _, st := range s.Steps {
			assert.Less(t, st.At, s.Workload.Duration, "case %d: step %q inside the workload", i, st.Label)
			if tx := st.Action.Toxic; tx != nil && !isHang(s, st) {
				assert.True(t, tx.Toxicity > 0 && tx.Toxicity < 1, "case %d: toxicity %v of %q in (0,1)", i, tx.Toxicity, st.Label)
			}
			for _, f := range st.Action.HTTPFaults {
				assert.True(t, f.Probability >= 0 && f.Probability < 1, "case %d: probability %v", i, f.Probability)
			}
		}
		for _, g := range faultGroups(s.Steps) {
			last := s.Steps[g[len(g)-1]]
			assert.Less(t, last.At, s.Workload.Duration, "case %d: the window ends inside the workload", i)
		}
		b, err := MarshalFile(s, "a comment line")
		require.NoError(t, err)
		back, err := harness.ParseScenarios(b)
		require.NoError(t, err, "case %d:\n%s", i, b)
		require.Len(t, back, 1)
		again, err := harness.MarshalScenarios(back)
		require.NoError(t, err)
		orig, _ := harness.MarshalScenarios([]harness.Scenario{s})
		assert.Equal(t, string(orig), string(again), "case %d round-trips through the file", i)
	}
}

// isHang: the hang and connect-stall kinds swallow every byte of every
// connection, on purpose (the catalog's shape).
func isHang(s harness.Scenario, st harness.Step) bool {
	return st.Action.Toxic.Type == harness.ToxicTimeout && st.Action.Toxic.Stream == harness.Upstream && st.Action.Toxic.Toxicity == 1
}

func TestGeneratorProducesEveryFaultKind(t *testing.T) {
	seen := map[string]int{}
	faults := map[int]int{}
	for seed := range uint64(1000) { // the first case of 1000 explorations
		s := Generate(seed, 0)
		faults[len(faultGroups(s.Steps))]++
		for _, k := range Kinds {
			if kindIn(s, k) {
				seen[k]++
			}
		}
	}
	for _, k := range Kinds {
		assert.Positive(t, seen[k], "kind %s never drawn in 1000 cases", k)
	}
	// Biased to small cases: most have one or two faults.
	assert.Greater(t, faults[1]+faults[2], 600, "fault counts %v", faults)
}

// kindIn tells, from the scenario alone, whether it has a fault of kind k.
func kindIn(s harness.Scenario, k string) bool {
	has := func(pred func(harness.Action) bool) bool {
		return slices.ContainsFunc(s.Steps, func(st harness.Step) bool { return pred(st.Action) })
	}
	toxic := func(typ string, pred func(harness.Toxic) bool) bool {
		return has(func(a harness.Action) bool { return a.Toxic != nil && a.Toxic.Type == typ && pred(*a.Toxic) })
	}
	fault := func(kind string, pred func(f faultT) bool) bool {
		return has(func(a harness.Action) bool {
			return slices.ContainsFunc(a.HTTPFaults, func(f faultT) bool { return f.Kind == kind && pred(f) })
		})
	}
	all := func(faultT) bool { return true }
	switch k {
	case KindBlackhole:
		return toxic(harness.ToxicTimeout, func(t harness.Toxic) bool { return t.Attributes["timeout"] == int64(0) && t.Toxicity < 1 })
	case KindConnectStall, KindHang:
		isHang := toxic(harness.ToxicTimeout, func(t harness.Toxic) bool { return t.Toxicity == 1 })
		return isHang && (k == KindHang) == (s.Workload.Mode == harness.OpenLoop)
	case KindResetPeer:
		return toxic(harness.ToxicResetPeer, func(harness.Toxic) bool { return true })
	case KindLatency:
		return toxic(harness.ToxicLatency, func(harness.Toxic) bool { return true })
	case KindBandwidth:
		return toxic(harness.ToxicBandwidth, func(harness.Toxic) bool { return true })
	case KindSlowClose:
		return toxic(harness.ToxicSlowClose, func(harness.Toxic) bool { return true })
	case KindSlicer:
		return toxic(harness.ToxicSlicer, func(harness.Toxic) bool { return true })
	case KindLimitData:
		return toxic(harness.ToxicLimitData, func(harness.Toxic) bool { return true })
	case KindTimeoutToxic:
		return toxic(harness.ToxicTimeout, func(t harness.Toxic) bool { n, _ := t.Attributes["timeout"].(int64); return n > 0 })
	case KindStatus:
		return fault("status", func(f faultT) bool { return f.Status >= 500 && f.RetryAfter == "" })
	case KindRetryAfter:
		return fault("status", func(f faultT) bool { return f.RetryAfter != "" })
	case KindProcessThenFail:
		return fault("process_then_fail", all)
	case KindCutBody:
		return fault("cut_body", all)
	case KindCloseAfterHeaders:
		return fault("close_after_headers", all)
	case KindSlowBody:
		return fault("slow_body", all)
	case KindSlowServer:
		return fault("delay", all) && s.Workload.Workers >= 48
	case KindAbandon:
		return fault("delay", all) && s.Workload.Caller.CancelShare == 1
	case KindRestart:
		return has(func(a harness.Action) bool { return a.Kind == harness.ActionDisableProxy }) &&
			!toxic(harness.ToxicTimeout, func(t harness.Toxic) bool { return t.Toxicity == 1 })
	case KindKeepAlive:
		return has(func(a harness.Action) bool { return a.Kind == harness.ActionSetKeepAlive })
	case KindIdleGaps:
		return s.Workload.ThinkTime >= 1200*time.Millisecond
	}
	return false
}

type faultT = fakeservers.Fault

// Every check that catches a gallery client is judged by some of the
// first cases of an exploration: the generator can reach every bug the
// catalog catches (whether a case has the timing to show it is for the
// runs to tell; docs/explore.md has the measured ones).
func TestGeneratorJudgesEveryCheckTheGalleryNeeds(t *testing.T) {
	judged := map[string]int{}
	for i := range 300 {
		for _, id := range Generate(1, i).CheckIDs() {
			judged[id]++
		}
	}
	for _, e := range brokenclients.All() {
		for _, id := range e.CaughtBy {
			assert.Positive(t, judged[id], "%s is caught by %s, which no case of the first 300 judges", e.Name, id)
		}
	}
}
