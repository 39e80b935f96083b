package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/report"
	"github.com/poolproof/poolproof/scenarios"
	"github.com/poolproof/poolproof/suites"
)

// The command line and the Ginkgo suites are two faces of one
// certification: one seed must replay one run whichever face started it.
// The suite below is the Go team's face; TestOneSeedReplaysOneRunFromEitherFace
// runs it and the CLI with the same seed and compares what they drew.
const (
	replaySeed     int64 = 4242
	replayScenario       = scenarios.Flaky5xx // inventory answers 503 to a seeded 20% of reads
)

var replaySuiteDir = filepath.Join(os.TempDir(), fmt.Sprintf("poolproof-replay-suite-%d", os.Getpid()))

var _ = suites.Certify(reference.Factory, reference.Profile(),
	suites.WithScenarios(mustLookup(replayScenario)), suites.WithSeed(replaySeed),
	suites.WithReport(replaySuiteDir, "reference"))

func mustLookup(name string) []harness.Scenario {
	s, err := scenarios.Lookup(name)
	if err != nil {
		panic(err)
	}
	return []harness.Scenario{s}
}

func TestOneSeedReplaysOneRunFromEitherFace(t *testing.T) {
	if testing.Short() {
		t.Skip("certifies one scenario three times")
	}
	t.Cleanup(func() { _ = os.RemoveAll(replaySuiteDir) })
	cli := func(seed int64) *harness.History {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		dispatch(ctx, []string{"certify", "-scenario", replayScenario, "-seed", fmt.Sprint(seed), "-report", dir}, io.Discard, io.Discard)
		return loadHistory(t, dir)
	}
	fromCLI := cli(replaySeed)

	RegisterFailHandler(Fail)
	RunSpecs(t, "the suites' face of the replay test")
	fromSuite := loadHistory(t, replaySuiteDir)

	assert.Equal(t, fromCLI.Seed, fromSuite.Seed)
	assert.Equal(t, fromCLI.RequestIDPrefix, fromSuite.RequestIDPrefix, "the same calls carry the same request ids")
	n := min(len(fromCLI.Calls), len(fromSuite.Calls))
	require.Greater(t, n, 50)
	bySeq := func(h *harness.History) map[uint32]harness.Op {
		m := map[uint32]harness.Op{}
		for _, c := range h.Calls {
			m[c.Seq] = c.Op
		}
		return m
	}
	a, b := bySeq(fromCLI), bySeq(fromSuite)
	for seq := range uint32(n) {
		if opA, ok := a[seq]; ok {
			if opB, ok := b[seq]; ok {
				require.Equal(t, opA, opB, "call %d", seq)
			}
		}
	}

	drawsCLI, drawsSuite := faultDraws(t, fromCLI), faultDraws(t, fromSuite)
	common := min(len(drawsCLI), len(drawsSuite))
	require.Greater(t, common, 50, "enough seeded draws to compare")
	assert.Equal(t, drawsCLI[:common], drawsSuite[:common], "the same seed draws the same faults in the same order")
	assert.Contains(t, drawsCLI[:common], "503", "the scenario's fault fired")

	other := faultDraws(t, cli(replaySeed+1))
	common = min(common, len(other))
	assert.NotEqual(t, drawsCLI[:common], other[:common], "another seed draws other faults: the comparison has teeth")
}

// loadHistory reads the one history a report folder holds.
func loadHistory(t *testing.T, dir string) *harness.History {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, report.HistoriesDir, report.HistoryFileName(replayScenario)))
	require.NoError(t, err)
	defer f.Close()
	h, err := harness.LoadHistory(f)
	require.NoError(t, err)
	return h
}

// faultDraws lists inventory's seeded fault draws in the order they were
// taken: the fault each drawing request got ("503" or "" for none).
func faultDraws(t *testing.T, h *harness.History) []string {
	t.Helper()
	truth := h.ServerAfterRun[fakeservers.Inventory]
	require.True(t, truth.Available, truth.Err)
	reqs := slices.Clone(truth.Stats.Requests)
	reqs = slices.DeleteFunc(reqs, func(r fakeservers.RequestRecord) bool { return r.Draw == 0 })
	slices.SortFunc(reqs, func(a, b fakeservers.RequestRecord) int { return int(a.Draw) - int(b.Draw) })
	out := make([]string, 0, len(reqs))
	for i, r := range reqs {
		require.Equal(t, uint32(i+1), r.Draw, "every draw is on a recorded request")
		fault := ""
		if r.Status == 503 {
			fault = "503"
		}
		out = append(out, fault)
	}
	return out
}
