package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/report"
	"github.com/poolproof/poolproof/scenarios"
)

// scorecardRows are the verdict rows of a printed scorecard, the header
// and the outcome line (which holds the elapsed time) left out.
func scorecardRows(out string) []string {
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, scenarios.Baseline+" ") || strings.HasPrefix(l, scenarios.Flaky5xx+" ") {
			rows = append(rows, strings.Join(strings.Fields(l), " "))
		}
	}
	return rows
}

func TestJudgeGivesTheVerdictsTheRunGaveAndFollowsAnEditedBound(t *testing.T) {
	if testing.Short() {
		t.Skip("certifies two scenarios")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var certOut, certErr syncBuffer
	code := dispatch(ctx, []string{"certify", "-scenario", scenarios.Baseline + "," + scenarios.Flaky5xx, "-report", dir}, &certOut, &certErr)
	require.Equal(t, 0, code, certErr.String())
	ran := scorecardRows(certOut.String())
	require.NotEmpty(t, ran)

	var judged, judgeErr syncBuffer
	require.Equal(t, 0, dispatch(ctx, []string{"judge", dir}, &judged, &judgeErr), judgeErr.String())
	assert.Equal(t, ran, scorecardRows(judged.String()), "judge prints the verdicts the run printed")

	var table, tableErr syncBuffer
	require.Equal(t, 0, dispatch(ctx, []string{"compare", dir, "-o", "-"}, &table, &tableErr), tableErr.String())
	assert.Contains(t, table.String(), "| check | "+filepath.Base(dir)+" |", "compare DIR: a column per report folder")
	assert.Contains(t, table.String(), "| `pool.bound` | pass |")

	// Hold the baseline's history to a pool of one connection: pool.bound
	// judged again now fails, from the history alone.
	path := filepath.Join(dir, report.HistoriesDir, report.HistoryFileName(scenarios.Baseline))
	h, err := loadHistoryFile(path)
	require.NoError(t, err)
	h.Profile.Default.MaxConns = 1
	for name, c := range h.Profile.Services {
		c.MaxConns = 1
		h.Profile.Services[name] = c
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, h.SaveCompressed(f))
	require.NoError(t, f.Close())

	var again, againErr syncBuffer
	rewritten := filepath.Join(dir, "rejudged")
	assert.Equal(t, 1, dispatch(ctx, []string{"judge", "-rewrite", rewritten, "-client", "reference", path}, &again, &againErr), againErr.String())
	assert.Contains(t, again.String(), scenarios.Baseline)
	var boundRow string
	for _, r := range scorecardRows(again.String()) {
		if strings.Contains(r, check.IDPoolBound) {
			boundRow = r
		}
	}
	assert.Contains(t, boundRow, "FAIL", "pool.bound follows the edited contract: %s", again.String())
	junit, err := os.ReadFile(filepath.Join(rewritten, report.JUnitFile))
	require.NoError(t, err)
	assert.Contains(t, string(junit), "failure", "the rewritten reports hold the new verdict")
}

func TestJudgeRejectsWhatIsNoHistory(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	garbage := filepath.Join(dir, "garbage.json")
	require.NoError(t, os.WriteFile(garbage, []byte("{not json"), 0o644))
	noChecks := filepath.Join(dir, "run.json")
	f, err := os.Create(noChecks)
	require.NoError(t, err)
	require.NoError(t, (&harness.History{Version: harness.HistoryVersion, Scenario: "x"}).Save(f))
	require.NoError(t, f.Close())
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no path", nil, "no PATH"},
		{"missing", []string{filepath.Join(dir, "nope")}, "give a report folder or a history file"},
		{"empty folder", []string{empty}, "no histories"},
		{"not json", []string{garbage}, "loading history"},
		{"no checks", []string{noChecks}, "the history holds no checks"},
		{"bad flag", []string{"-colour", dir}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			assert.Equal(t, 2, dispatch(context.Background(), append([]string{"judge"}, tc.args...), &stdout, &stderr))
			assert.Empty(t, stdout.String())
			msg := stderr.String()
			assert.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
			assert.True(t, strings.HasPrefix(msg, "poolproof judge: "), msg)
			assert.Contains(t, msg, tc.want)
		})
	}
}
