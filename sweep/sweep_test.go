package sweep_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/sweep"
)

func newEnv(t *testing.T) *env.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := env.NewEmbedded(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// With latency L and an open-loop offered rate R, Little's law says a pool
// needs about R x L connections: 200/s x 50ms = 10. The knee must lie at the
// grid points around it, and a pool far below it must fall clearly short.
func TestSweepKneeMatchesLittlesLaw(t *testing.T) {
	testenv.SkipUnderRace(t) // a load test: its latencies measure the race detector under -race
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
	assert.InDelta(t, 10, k.LittleEstimate, 4, "Little's law from the measured mean latency at the largest pool")
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
	for _, c := range res.Cells {
		assert.Positive(t, c.PeakConns, "pool %d: the server's truth is read", c.Pool)
		assert.LessOrEqual(t, c.PeakConns, c.Pool, "the reference client keeps its pool bound")
		assert.GreaterOrEqual(t, c.Attempts, c.OK, "pool %d: every success reached the server", c.Pool)
		assert.Zero(t, c.Faulted, "no fault injected, only latency")
	}

	var js bytes.Buffer
	require.NoError(t, res.WriteJSON(&js))
	var back sweep.Result
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, res.Knees, back.Knees)
	assert.Contains(t, table.String(), "knee")
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sweep.Config
		want string
	}{
		{"unknown service", sweep.Config{Service: "billing"}, `service "billing"`},
		{"unknown fault", sweep.Config{Fault: "fire"}, `fault "fire"`},
		{"unknown latency injection", sweep.Config{LatencyVia: "carrier pigeon"}, `latency via "carrier pigeon"`},
		{"negative latency", sweep.Config{Latency: -time.Millisecond}, "latency -1ms is negative"},
		{"empty pools", sweep.Config{Pools: []int{}}, "pools: give at least one"},
		{"zero pool", sweep.Config{Pools: []int{4, 0}}, "pool size 0"},
		{"negative pool", sweep.Config{Pools: []int{-2}}, "pool size -2"},
		{"negative rate", sweep.Config{Rate: -1}, "rate -1 is negative"},
		{"zero workers", sweep.Config{Concurrency: []int{0}}, "concurrency 0"},
		{"no workers", sweep.Config{Concurrency: []int{}}, "concurrency: give at least one"},
		{"cell too short", sweep.Config{Duration: time.Millisecond}, "duration 1ms"},
		{"plateau above 1", sweep.Config{PlateauFrac: 1.5}, "plateau fraction 1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			require.ErrorIs(t, err, sweep.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.want)
			_, err = sweep.Run(context.Background(), nil, tc.cfg)
			require.ErrorIs(t, err, sweep.ErrInvalidConfig, "Run refuses it before anything starts")
		})
	}
	require.NoError(t, sweep.Config{}.Validate(), "the defaults are a valid sweep")
	require.NoError(t, sweep.Config{Rate: 100, Concurrency: []int{0}}.Validate(), "an open loop ignores the worker counts")
	_, err := sweep.Run(context.Background(), nil, sweep.Config{})
	require.ErrorIs(t, err, sweep.ErrInvalidConfig, "no environment")
}

func TestParseInts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  string
	}{
		{"1,2,4", []int{1, 2, 4}, ""},
		{" 16, 4 ,8", []int{4, 8, 16}, ""},
		{"", nil, "-pools is empty"},
		{"1,,2", nil, `"" is not a whole number`},
		{"1,x", nil, `"x" is not a whole number`},
		{"2.5", nil, `"2.5" is not a whole number`},
		{"0", nil, "0 must be >= 1"},
		{"4,-1", nil, "-1 must be >= 1"},
		{"2,2", nil, "2 is listed twice"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := sweep.ParseInts("-pools", tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, sweep.ErrInvalidConfig)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// plainClient is an http.Client without retries whose transport allows pool
// connections: a client other than the reference, plugged in through
// Config.Client.
func plainClient(svc harness.Service, pool int) (harness.Client, error) {
	tr := &http.Transport{
		MaxConnsPerHost: pool, MaxIdleConnsPerHost: pool,
		TLSClientConfig: &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12},
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Second}, nil
}

// A closed loop with the latency in the server and 5% of answers 503:
// a client without retries shows the fault as errors at every pool size,
// and the server's delay in every call.
func TestSweepClosedLoopServerLatencyAnd5xxWithAPluggedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the embedded environment for ~5s")
	}
	const latency = 30 * time.Millisecond
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var built []int
	res, err := sweep.Run(ctx, env, sweep.Config{
		Latency: latency, LatencyVia: sweep.ViaServer, Fault: sweep.Fault5xx,
		Pools: []int{1, 8}, Concurrency: []int{8}, Duration: time.Second, Seed: 3,
		Client: func(svc harness.Service, pool int) (harness.Client, error) {
			mu.Lock()
			built = append(built, pool)
			mu.Unlock()
			return plainClient(svc, pool)
		},
	})
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	t.Logf("\n%s", table.String())

	assert.Equal(t, []int{1, 8}, built, "one client per cell, built with the cell's pool size")
	assert.Equal(t, harness.ClosedLoop, res.Mode)
	require.Len(t, res.Cells, 2)
	for _, c := range res.Cells {
		assert.Equal(t, 8, c.Concurrency)
		assert.Positive(t, c.Errors["http_503"], "pool %d: the 5xx fault shows without retries", c.Pool)
		assert.Less(t, c.ErrorRate, 0.25, "pool %d: about 5%% of calls fail", c.Pool)
		assert.GreaterOrEqual(t, c.P50, latency, "pool %d: the server's delay is in every call", c.Pool)
		assert.Positive(t, c.Faulted, "pool %d: the server answered 503 to some attempts", c.Pool)
	}
	one, _ := res.Cell(1, 8)
	eight, _ := res.Cell(8, 8)
	// 8 workers queue on one connection (Go's transport waits without
	// bound), so the pool of 1 is far slower and its p50 far higher.
	assert.Greater(t, eight.Throughput, 3*one.Throughput)
	assert.Greater(t, one.P50, 3*latency)
	k, ok := res.Knee(8)
	require.True(t, ok)
	assert.Equal(t, 8, k.Plateau)
	// Not the p99: this client dials on demand, and on a loaded machine
	// eight TLS handshakes during the cell can own its tail.
	assert.Less(t, eight.P50, one.P50/2)
	assert.Equal(t, 0, k.ErrorsBegin, "the fault's 5% is the floor at every pool, not an onset")
}

// Canceling the context (SIGINT in the CLI) stops the sweep between cells
// or inside one, quickly, with the cells done so far.
func TestSweepStopsWhenCanceled(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	res, err := sweep.Run(ctx, env, sweep.Config{
		Latency: 10 * time.Millisecond, Pools: []int{1, 2, 4}, Concurrency: []int{2}, Duration: 5 * time.Second,
		Progress: func(p sweep.Progress) {
			if !p.Done && p.Index == 2 {
				go func() { time.Sleep(200 * time.Millisecond); cancel() }()
			}
		},
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, res)
	assert.True(t, res.Interrupted)
	assert.Less(t, time.Since(started), 15*time.Second, "the first cell runs 5s; the canceled one must stop early")
	require.NotEmpty(t, res.Cells)
	assert.Empty(t, res.Cells[0].Err)
	assert.LessOrEqual(t, len(res.Cells), 2)

	// The environment is left clean: no toxic from the sweep.
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	st, err := env.Driver().Proxy(pctx, sweep.DefaultService)
	require.NoError(t, err)
	assert.Empty(t, st.Toxics)
}

// Resets: the server ends some exchanges with a TCP reset; the reference
// client retries its GETs, so the fault shows in the server's attempts, not
// in the caller's error rate.
func TestSweepResetsAreRetriedByTheReferenceClient(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the embedded environment for ~2s")
	}
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := sweep.Run(ctx, env, sweep.Config{
		Latency: 10 * time.Millisecond, Fault: sweep.FaultResets,
		Pools: []int{4}, Concurrency: []int{4}, Duration: time.Second, Seed: 5,
	})
	require.NoError(t, err)
	require.Len(t, res.Cells, 1)
	c := res.Cells[0]
	t.Logf("calls %d ok %d attempts %d faulted %d errors %v", c.Calls, c.OK, c.Attempts, c.Faulted, c.Errors)
	assert.Positive(t, c.Faulted, "about 5% of attempts are reset")
	assert.Greater(t, c.Attempts, c.Calls, "reset attempts are retried")
	assert.Less(t, c.ErrorRate, 0.05, "retries hide most resets from the caller")
}
