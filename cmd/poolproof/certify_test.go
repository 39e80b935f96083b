package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

func certify(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = dispatch(context.Background(), append([]string{"certify"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCertifyRejectsBadInputWithExitCode2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown client", []string{"-client", "nope"}, `-client "nope": not a client poolproof knows`},
		{"unknown scenario", []string{"-scenario", "nope"}, `-scenario "nope": no scenario or family of that name`},
		{"unknown profile", []string{"-profile", "huge"}, `-profile "huge": use quick or standard`},
		{"unknown environment", []string{"-env", "mars"}, `-env "mars"`},
		{"malformed flag", []string{"-seed", "abc"}, `invalid value "abc" for flag -seed`},
		{"stray argument", []string{"now"}, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := certify(t, tc.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout, "nothing runs on bad input")
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, bytes.Count([]byte(stderr), []byte("\n")), "one line: %q", stderr)
		})
	}
}

func TestCertifyReferencePassesAndSavesHistories(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := certify(t, "-profile", "quick", "-scenario", "baseline", "-seed", "7", "-report", dir)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stderr, "[1/1] baseline (leak, seed 7)", "progress names the scenario and seed")
	assert.Contains(t, stdout, "CERTIFIED: ")
	assert.Contains(t, stdout, "leak.goroutines")
	assert.NotContains(t, stdout, "FAIL")

	f, err := os.Open(filepath.Join(dir, "histories", "baseline.json"))
	require.NoError(t, err)
	defer f.Close()
	h, err := harness.LoadHistory(f)
	require.NoError(t, err)
	assert.Equal(t, int64(7), h.Seed)
	assert.NotEmpty(t, h.Calls)
}

func TestCertifyBrokenClientFailsNamingTheCheck(t *testing.T) {
	code, stdout, stderr := certify(t, "-profile", "quick", "-scenario", "process-then-fail", "-client", "retries-unsafe-post")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "NOT CERTIFIED")
	assert.Regexp(t, `process-then-fail\s+ledger.no_duplicate_charge\s+FAIL`, stdout)
	assert.Regexp(t, `was charged [2-9] times`, stdout)
}
