package explore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

func TestAShrunkFileLeadsWithItsSentenceAndParsesBack(t *testing.T) {
	s := bigCase()
	path := filepath.Join(t.TempDir(), "shrunk-x.yaml")
	require.NoError(t, WriteFile(path, s, "client c fails x with y: 2 steps, 1s, 1 workers", "second line"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "# client c fails x with y: 2 steps, 1s, 1 workers\n# second line\n{")
	got, err := LoadCase(path)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, fingerprint(s), fingerprint(got[0]))
}

func TestAHistoryIsTheScenarioThatRan(t *testing.T) {
	s := bigCase()
	h := &harness.History{Version: harness.HistoryVersion, Scenario: s.Name + "@h2", Seed: 77, Family: s.Family, Proves: s.Proves,
		Workload: s.Workload, Checks: s.Checks, Protocol: harness.ProtocolHTTP2, RequestIDPrefix: "pp-big-1"}
	for _, st := range s.Steps {
		h.Steps = append(h.Steps, harness.StepRecord{Step: st, Outcome: harness.StepApplied})
	}
	path := filepath.Join(t.TempDir(), "big.json.gz")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, h.SaveCompressed(f))
	require.NoError(t, f.Close())

	got, err := LoadCase(path)
	require.NoError(t, err)
	require.Len(t, got, 1)
	want := s
	want.Seed, want.Protocol = 77, harness.ProtocolHTTP2
	assert.Equal(t, fingerprint(want), fingerprint(got[0]))

	h.Checks = nil
	_, err = ScenarioOf(h)
	assert.ErrorContains(t, err, "names no checks")
}
