package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/explore"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/testenv"
)

func runCommand(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = dispatch(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestExploreAndShrinkRejectBadInputWithExitCode2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: x\n"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"explore: unknown client", []string{"explore", "-client", "nope"}, `-client "nope": not a client poolproof knows`},
		{"explore: no budget", []string{"explore", "-budget", "0s"}, "-budget must be positive"},
		{"explore: no confirm", []string{"explore", "-confirm", "0"}, "-confirm must be at least 1"},
		{"explore: stray word", []string{"explore", "later"}, `unexpected argument "later"`},
		{"shrink: no file", []string{"shrink"}, "give one FILE to shrink"},
		{"shrink: two files", []string{"shrink", "a.yaml", "b.yaml"}, "give one FILE to shrink"},
		{"shrink: missing file", []string{"shrink", filepath.Join(dir, "none.yaml")}, "no such file"},
		{"shrink: bad file", []string{"shrink", bad}, "invalid scenario file"},
		{"shrink: unknown check", []string{"shrink", "-check", "nope", bad}, `-check "nope" is not a check`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(append(tc.args, "-o", dir)...)
			assert.Equal(t, 2, code, "stderr: %s", stderr)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}

func TestExploreAndShrinkAreListedInHelp(t *testing.T) {
	code, stdout, _ := runCommand("help")
	require.Equal(t, 0, code)
	assert.Regexp(t, regexp.MustCompile(`(?m)^  explore\s+search for a failure the catalog misses`), stdout)
	assert.Regexp(t, regexp.MustCompile(`(?m)^  shrink\s+reduce a failing scenario file or saved history`), stdout)
	code, stdout, _ = runCommand("list", "faults")
	require.Equal(t, 0, code)
	for _, k := range explore.Kinds {
		assert.Contains(t, stdout, k)
	}
}

// The end-to-end test: explore a gallery client with a small budget,
// find its bug, shrink it, and replay the shrunk file with certify. The
// client (body-not-read-to-eof) fails integrity.digest on any call, so
// the first case finds it; the shrink is bounded to stay near 40s on a
// 2-core machine.
func TestExploreFindsAndShrinksAGalleryBug(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded environment for about 40s")
	}
	testenv.SkipUnderRace(t)
	dir := t.TempDir()
	code, stdout, stderr := runCommand("explore", "-client", "body-not-read-to-eof", "-budget", "20s", "-seed", "3",
		"-shrink-budget", "20s", "-confirm", "1", "-final", "1", "-o", dir)
	require.Equal(t, 1, code, "a finding exits 1\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stderr, "[case 1] explore-")
	assert.Contains(t, stderr, "finding: integrity.digest fails")
	assert.Contains(t, stderr, "shrink 1: only integrity.digest judged: kept")
	assert.Contains(t, stdout, "1 findings")
	assert.Contains(t, stdout, "client body-not-read-to-eof fails integrity.digest with")

	shrunk := filepath.Join(dir, "shrunk-integrity.digest.yaml")
	data, err := os.ReadFile(shrunk)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(data), "# client body-not-read-to-eof fails integrity.digest with "), "the sentence leads the file:\n%s", data)
	got, err := harness.ParseScenarios(data)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, []string{"integrity.digest"}, got[0].CheckIDs(), "only the failing check is left")
	caseFile, err := harness.LoadScenarios(filepath.Join(dir, "case-integrity.digest.yaml"))
	require.NoError(t, err)
	before, after := explore.SizeOf(caseFile[0]), explore.SizeOf(got[0])
	assert.Less(t, after.Checks, before.Checks)
	assert.LessOrEqual(t, after.Duration, before.Duration)
	for _, f := range []string{"report.html", "junit.xml", "summary.md"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}

	// The shrunk file replays.
	code, stdout, stderr = certify(t, "-profile", "none", "-scenarios", shrunk, "-client", "body-not-read-to-eof", "-report", "-")
	assert.Equal(t, 1, code, "stderr: %s", stderr)
	assert.Regexp(t, `shrunk-integrity.digest\s+integrity.digest\s+FAIL`, stdout)
}
