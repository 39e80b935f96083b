package harness_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/scenarios"
)

// Fuzz targets for every file a user feeds poolproof: contract files,
// scenario files and saved histories. Each must not panic or hang, and
// refuses bad input with one line (naming the field where it is a
// validation error).

func oneLineError(t *testing.T, err error) {
	t.Helper()
	require.NotContains(t, err.Error(), "\n", "an error is one line")
}

func seedFiles(f *testing.F, pattern string) {
	f.Helper()
	paths, err := filepath.Glob(pattern)
	require.NoError(f, err)
	require.NotEmpty(f, paths, pattern)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(data)
	}
}

func FuzzParseProfile(f *testing.F) {
	seedFiles(f, "../drivers/*/*contract.json")
	f.Add([]byte("default:\n  pool_wait: 250ms\nservices:\n  payment: {max_attempts: 1}\nhttp2: true\n"))
	f.Add([]byte(`{"default": {"max_conns": -1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := harness.ParseProfile(data)
		if err != nil {
			require.ErrorIs(t, err, harness.ErrInvalidProfile)
			oneLineError(t, err)
			return
		}
		// What parses is a contract a run can use: nothing negative.
		for _, c := range append([]harness.Contract{p.Default}, mapValues(p.Services)...) {
			require.GreaterOrEqual(t, c.RequestTimeout, time.Duration(0))
			require.GreaterOrEqual(t, c.MaxConns, 0)
		}
	})
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func FuzzParseScenarios(f *testing.F) {
	seedFiles(f, "../examples/scenarios/*.yaml")
	for _, list := range [][]harness.Scenario{scenarios.Quick(), scenarios.Standard()[:3]} {
		data, err := harness.MarshalScenarios(list)
		require.NoError(f, err)
		f.Add(data)
	}
	file, err := harness.MarshalScenarios(scenarios.Quick()[:1])
	require.NoError(f, err)
	var doc struct{ Scenarios []json.RawMessage }
	require.NoError(f, json.Unmarshal(file, &doc))
	f.Add([]byte(doc.Scenarios[0])) // a file of a single scenario
	_, err = harness.ParseScenarios(doc.Scenarios[0])
	require.NoError(f, err)
	f.Add([]byte("name: x\nfamily: pool\nproves: y\nworkload: {duration: 1s}\nchecks: [{id: pool.bound, close_lag: 1ms}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := harness.ParseScenarios(data)
		if err != nil {
			require.ErrorIs(t, err, harness.ErrInvalidScenarioFile)
			var fe *harness.FieldError
			require.ErrorAs(t, err, &fe, "the error names the field")
			require.NotEmpty(t, fe.Path)
			oneLineError(t, err)
			return
		}
		// What parses is valid and is itself a scenario file.
		require.NotEmpty(t, list)
		for _, s := range list {
			require.NoError(t, s.Validate())
		}
		again, err := harness.MarshalScenarios(list)
		require.NoError(t, err)
		back, err := harness.ParseScenarios(again)
		require.NoError(t, err, "%s", again)
		require.Equal(t, list, back)
	})
}

func FuzzLoadHistory(f *testing.F) {
	h := &harness.History{
		Version: harness.HistoryVersion, Scenario: "fuzz", Seed: 7, Services: []string{"inventory", "payment"},
		RequestIDPrefix: "pp-fuzz-aa", Watchdog: 5 * time.Second,
		Calls: []harness.CallRecord{
			{Seq: 0, Start: 0, End: 10, Op: harness.OpGetItem, Service: harness.ServiceInventory, Status: 200, Digest: harness.DigestOK},
			{Seq: 1, Start: 5, End: 900, Op: harness.OpCreateCharge, Service: harness.ServicePayment, Status: 503},
		},
	}
	var plain, gz bytes.Buffer
	require.NoError(f, h.Save(&plain))
	require.NoError(f, h.SaveCompressed(&gz))
	f.Add(plain.Bytes())
	f.Add(gz.Bytes())
	f.Add([]byte(`{"version": 0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := harness.LoadHistory(bytes.NewReader(data))
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "loading history: "), err.Error())
			oneLineError(t, err)
			return
		}
		// poolproof judge judges what loads: every check gives a verdict
		// (a panicking check is turned into a failed one, which must not
		// happen on a history LoadHistory accepted).
		for _, v := range harness.Judge(h, check.All()...) {
			require.NotContains(t, v.Reason, "panicked", "%s", v)
		}
	})
}
