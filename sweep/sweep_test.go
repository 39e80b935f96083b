package sweep_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/sweep"
)

func newEnv(t *testing.T) *harness.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := harness.NewEmbedded(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Close() })
	return env
}

// With latency L and an open-loop offered rate R, Little's law says a pool
// needs about R x L connections: 200/s x 50ms = 10. The knee must lie at the
// grid points around it, and a pool far below it must fall clearly short.
func TestSweepKneeMatchesLittlesLaw(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the embedded environment for ~15s")
	}
	const (
		rate    = 200.0
		latency = 50 * time.Millisecond
	)
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var progress []sweep.Progress
	res, err := sweep.Run(ctx, env, sweep.Config{
		Latency:  latency,
		Rate:     rate,
		Pools:    []int{2, 4, 8, 16, 32},
		Duration: 1500 * time.Millisecond,
		Progress: func(p sweep.Progress) { progress = append(progress, p) },
	})
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	t.Logf("sweep took %s\n%s", res.Elapsed, table.String())

	require.Len(t, res.Cells, 5)
	require.Len(t, res.Knees, 1)
	require.Len(t, progress, 10, "a start and an end per cell")
	assert.Equal(t, 5, progress[9].Index)
	assert.Equal(t, 5, progress[9].Total)

	k := res.Knees[0]
	assert.GreaterOrEqual(t, k.Plateau, 8, "the knee must not lie below R x L = 10 by more than one grid step")
	assert.LessOrEqual(t, k.Plateau, 16, "the knee must lie at or below the grid point above R x L = 10")
	assert.InDelta(t, 10, k.LittleEstimate, 4, "Little's law from the measured p50 at the largest pool")
	assert.Equal(t, 16, k.LittleGrid)

	small, ok := res.Cell(2, 0)
	require.True(t, ok)
	// A pool of 2 serves at most 2/L = 40 calls/s: far below R.
	assert.Less(t, small.Throughput, rate/2, "pool 2 must fall clearly short of the offered rate")
	assert.Greater(t, small.ErrorRate, 0.3, "the reference client fails fast when its pool is exhausted")
	assert.GreaterOrEqual(t, k.ErrorsBegin, 4)
	big, ok := res.Cell(32, 0)
	require.True(t, ok)
	assert.Greater(t, big.Throughput, 0.8*rate, "a pool well above R x L serves the offered rate")
	assert.GreaterOrEqual(t, big.P50, latency, "the injected latency shows in every call")
	assert.Less(t, big.ErrorRate, 0.02)

	var js bytes.Buffer
	require.NoError(t, res.WriteJSON(&js))
	var back sweep.Result
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, res.Knees, back.Knees)
	assert.Contains(t, table.String(), "knee")
}
