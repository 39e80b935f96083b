package comparison

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

func verdict(id string, s harness.Status, reason string) harness.Verdict {
	return harness.Verdict{Check: id, Status: s, Reason: reason}
}

func TestCellFoldsEveryScenario(t *testing.T) {
	cert := &harness.Certificate{Results: []harness.ScenarioResult{
		{Scenario: "baseline", Verdicts: []harness.Verdict{verdict("pool.bound", harness.StatusPass, ""), verdict("retry.backoff", harness.StatusNotApplicable, "")}},
		{Scenario: "storm", Verdicts: []harness.Verdict{verdict("pool.bound", harness.StatusFail, "41 connections > 20"), verdict("retry.backoff", harness.StatusNotApplicable, "")}},
		{Scenario: "resets", Verdicts: []harness.Verdict{verdict("pool.bound", harness.StatusFail, "30 connections > 20")}},
	}}
	c := CellOf(cert, "pool.bound")
	assert.Equal(t, harness.StatusFail, c.Status)
	assert.Equal(t, []string{"storm", "resets"}, c.Failed)
	assert.Equal(t, "41 connections > 20", c.Reason, "the first failure's reason")
	assert.Equal(t, 3, c.Scenarios)
	assert.Equal(t, harness.StatusNotApplicable, CellOf(cert, "retry.backoff").Status)
	assert.Equal(t, harness.Status(""), CellOf(cert, "ledger.no_duplicate_charge").Status)
	assert.Equal(t, []string{"pool.bound", "retry.backoff"}, Checks([]Column{{Cert: cert}}), "in report order")
}

func TestWriteExplainsFailuresInTheLibrarysWords(t *testing.T) {
	pass := &harness.Certificate{Results: []harness.ScenarioResult{{Scenario: "storm", Verdicts: []harness.Verdict{verdict("pool.bound", harness.StatusPass, ""), verdict("pool.churn", harness.StatusPass, "")}}}}
	fail := &harness.Certificate{Results: []harness.ScenarioResult{{Scenario: "storm", Verdicts: []harness.Verdict{verdict("pool.bound", harness.StatusFail, "41 > 20"), verdict("pool.churn", harness.StatusFail, "900 new connections per 1000 calls")}}}}
	var b strings.Builder
	require.NoError(t, Write(&b, "about", []Column{
		{Entry: Entry{Name: "reference"}, Cert: pass},
		{Entry: Entry{Name: "lib | typical", Library: "lib 1.0", Why: map[string]string{"pool.bound": "`pool_block=False` opens a connection per call"}}, Cert: fail},
		{Entry: Entry{Name: "broken"}, Err: "the driver did not start"},
	}))
	out := b.String()
	assert.Contains(t, out, "| check | reference | lib \\| typical | broken |")
	assert.Contains(t, out, "| `pool.bound` | pass | **FAIL** (1) | error |")
	assert.Contains(t, out, "- `pool.bound` (storm): `pool_block=False` opens a connection per call", "the manifest's sentence")
	assert.Contains(t, out, "- `pool.churn` (storm): 900 new connections per 1000 calls", "else the verdict's reason")
	assert.Contains(t, out, "- not certified: the driver did not start")
	assert.NotContains(t, out, "**reference", "a client that fails nothing has no list")
}

func TestSpliceKeepsTheRestOfTheDocument(t *testing.T) {
	doc := "# title\n\n" + BeginMarker + "\nold table\n" + EndMarker + "\n\nafter\n"
	got, ok := Splice(doc, "new table\n")
	require.True(t, ok)
	assert.Equal(t, "# title\n\n"+BeginMarker+"\nnew table\n"+EndMarker+"\n\nafter\n", got)
	_, ok = Splice("no markers", "t")
	assert.False(t, ok)
}

func TestLoadNamesWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "m.json")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	for _, tc := range []struct{ body, want string }{
		{`{"clients": []}`, "no clients"},
		{`{"clients": [{"client": "reference"}]}`, "clients[0] has no name"},
		{`{"clients": [{"name": "a", "client": "reference"}, {"name": "a", "client": "plain"}]}`, `"a" is used twice`},
		{`{"clients": [{"name": "a"}]}`, "exactly one of client and driver"},
		{`{"clients": [{"name": "a", "client": "reference", "driver": "x"}]}`, "exactly one of client and driver"},
		{`{"clients": [{"name": "a", "clinet": "reference"}]}`, `unknown field "clinet"`},
	} {
		_, err := Load(write(tc.body))
		require.ErrorIs(t, err, ErrInvalidManifest, tc.body)
		assert.Contains(t, err.Error(), tc.want)
	}
	m, err := Load(write(`{"clients": [{"name": "a", "client": "reference"}, {"name": "b", "driver": "x"}]}`))
	require.NoError(t, err)
	only, err := m.Only([]string{"b"})
	require.NoError(t, err)
	assert.Equal(t, "b", only.Clients[0].Name)
	_, err = m.Only([]string{"c"})
	assert.ErrorContains(t, err, `no client "c" in the manifest; it has a, b`)
}

// The shipped manifest loads, and every sentence it gives is for a check
// poolproof has.
func TestShippedManifest(t *testing.T) {
	m, err := Load("../drivers/comparison.json")
	require.NoError(t, err)
	known := map[string]bool{harness.CheckDriver: true}
	for _, id := range append(check.AllIDs(), harness.RegisteredChecks()...) {
		known[id] = true
	}
	for _, e := range m.Clients {
		for id := range e.Why {
			assert.True(t, known[id], "%s explains %q, which is no check", e.Name, id)
		}
	}
}
