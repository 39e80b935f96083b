package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/comparison"
)

func TestCompareRejectsBadInputBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	n := 0
	manifest := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("m%d.json", n))
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	good := manifest(`{"clients": [{"name": "ref", "client": "reference"}]}`)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no manifest", []string{"-manifest", filepath.Join(dir, "none.json")}, "no such file"},
		{"bad manifest", []string{"-manifest", manifest(`{"clients": [{"name": "x"}]}`)}, "exactly one of client and driver"},
		{"unknown client", []string{"-manifest", manifest(`{"clients": [{"name": "x", "client": "nosuch"}]}`)}, `x: -client "nosuch": not a client poolproof knows`},
		{"driver not found", []string{"-manifest", manifest(`{"clients": [{"name": "x", "driver": "/nonexistent/driver"}]}`)}, "install it or fix the manifest"},
		{"bad contract", []string{"-manifest", manifest(`{"clients": [{"name": "x", "client": "reference", "contract": "` + filepath.Join(dir, "none.contract.json") + `"}]}`)}, "contract file"},
		{"unknown -only", []string{"-manifest", good, "-only", "nope"}, `-only: no client "nope" in the manifest; it has ref`},
		{"bad profile", []string{"-manifest", good, "-profile", "huge"}, "huge"},
		{"not a report folder", []string{filepath.Join(dir, "nowhere")}, "not a folder: give report folders"},
		{"unwritable output", []string{"-manifest", good, "-o", filepath.Join(dir, "missing", "out.md")}, "choose a file you can write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			code := dispatch(context.Background(), append([]string{"compare"}, tt.args...), &stdout, &stderr)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout.String())
			msg := stderr.String()
			assert.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
			assert.True(t, strings.HasPrefix(msg, "poolproof compare: "), msg)
			assert.Contains(t, msg, tt.want)
		})
	}
}

// compare puts its table between a document's markers and keeps the rest.
func TestCompareWritesBetweenTheMarkers(t *testing.T) {
	if testing.Short() {
		t.Skip("certifies the reference client on one scenario")
	}
	dir := t.TempDir()
	m := filepath.Join(dir, "m.json")
	require.NoError(t, os.WriteFile(m, []byte(`{"clients": [{"name": "ref", "client": "reference"}]}`), 0o644))
	doc := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(doc, []byte("intro\n"+comparison.BeginMarker+"\nold\n"+comparison.EndMarker+"\noutro\n"), 0o644))
	var stdout, stderr syncBuffer
	code := dispatch(context.Background(), []string{"compare", "-manifest", m, "-profile", "quick", "-scenario", "baseline", "-o", doc}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	got, err := os.ReadFile(doc)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(got), "intro\n"+comparison.BeginMarker+"\nThe quick catalog (1 scenarios)"), string(got))
	assert.Contains(t, string(got), "| `pool.bound` | pass |")
	assert.NotContains(t, string(got), "old")
	assert.True(t, strings.HasSuffix(string(got), comparison.EndMarker+"\noutro\n"), string(got))
	assert.Contains(t, stderr.String(), "[client 1/1] ref")

	fresh := filepath.Join(dir, "new.md")
	code = dispatch(context.Background(), []string{"compare", "-manifest", m, "-profile", "quick", "-scenario", "baseline", "-o", fresh}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	got, err = os.ReadFile(fresh)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(got), "The quick catalog (1 scenarios)"), "a new file holds the table alone: %s", got)
}
