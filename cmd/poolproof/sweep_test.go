package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/internal/drivertest"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/sweep"
)

func runSweepCmd(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = dispatch(ctx, append([]string{"sweep"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSweepRejectsBadInputWithExitCode2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown service", []string{"-service", "billing"}, `-service "billing": use payment, inventory, notification`},
		{"unknown fault", []string{"-fault", "fire"}, `-fault "fire": use none, resets or 5xx`},
		{"unknown latency injection", []string{"-latency-via", "dns"}, `-latency-via "dns": use toxic or server`},
		{"malformed pools", []string{"-pools", "1,two,4"}, `-pools: "two" is not a whole number`},
		{"empty pools", []string{"-pools", ""}, "-pools is empty"},
		{"zero pool", []string{"-pools", "0,4"}, "-pools: 0 must be >= 1"},
		{"negative pool", []string{"-pools", "4,-8"}, "-pools: -8 must be >= 1"},
		{"malformed concurrency", []string{"-concurrency", "8;32"}, `-concurrency: "8;32" is not a whole number`},
		{"rate and concurrency", []string{"-rate", "100", "-concurrency", "8"}, "-rate and -concurrency both given"},
		{"zero rate", []string{"-rate", "0"}, "-rate 0: give a positive rate"},
		{"negative latency", []string{"-latency", "-5ms"}, "-latency -5ms is negative"},
		{"cell too short", []string{"-duration", "1ms"}, "-duration 1ms: give at least 100ms"},
		{"malformed duration", []string{"-duration", "soon"}, `invalid value "soon" for flag -duration`},
		{"stray argument", []string{"now"}, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := time.Now()
			code, stdout, stderr := runSweepCmd(t, context.Background(), tc.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout, "nothing runs on bad input")
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			assert.Less(t, time.Since(started), 2*time.Second, "refused before any environment starts")
		})
	}
}

func TestSweepHelpExitsZero(t *testing.T) {
	code, stdout, _ := runSweepCmd(t, context.Background(), "-h")
	assert.Equal(t, 0, code)
	for _, flag := range []string{"-service", "-latency", "-fault", "-pools", "-concurrency", "-rate", "-duration", "-report"} {
		assert.Contains(t, stdout, flag)
	}
}

func TestSweepTinyRunPrintsTheTableAndWritesTheReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, stdout, stderr := runSweepCmd(t, ctx, "-pools", "1,4", "-concurrency", "4", "-latency", "20ms", "-duration", "400ms", "-repeat", "2", "-report", dir)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	t.Logf("\n%s", stdout)

	assert.Contains(t, stderr, "[cell 1 of 2] pool 1, concurrency 4")
	assert.Contains(t, stderr, "[cell 2 of 2] pool 4, concurrency 4")
	for _, want := range []string{"concurrency  pool  calls", "knee", "Little's law", "rule of thumb (cores * 2) + spindles"} {
		assert.Contains(t, stdout, want)
	}
	html, err := os.ReadFile(filepath.Join(dir, "sweep.html"))
	require.NoError(t, err)
	assert.Contains(t, string(html), "<svg")
	data, err := os.ReadFile(filepath.Join(dir, "sweep.json"))
	require.NoError(t, err)
	var res sweep.Result
	require.NoError(t, json.Unmarshal(data, &res))
	require.Len(t, res.Cells, 2)
	assert.Positive(t, res.Cells[1].Throughput)
	require.NotNil(t, res.Cells[1].Spread, "a repeated cell keeps its spread")
	assert.Equal(t, 2, res.Cells[1].Spread.Runs)
	assert.LessOrEqual(t, res.Cells[1].Spread.MinThroughput, res.Cells[1].Throughput)
	assert.GreaterOrEqual(t, res.Cells[1].Spread.MaxThroughput, res.Cells[1].Throughput)
	assert.Contains(t, stdout, "median of 2 runs per cell")
	assert.Contains(t, string(html), "ok/s min-max (sd)")
}

// A driver's pool is its own: the sweep varies only the load, says so,
// and prints every cell with the spread of its runs.
func TestSweepOfADriverVariesTheLoadAndPrintsTheSpread(t *testing.T) {
	testenv.SkipUnderRace(t)
	bin := drivertest.GoDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	code, stdout, stderr := runSweepCmd(t, ctx, "-driver", bin, "-contract", "../../drivers/go/contract.json",
		"-concurrency", "1,4", "-latency", "10ms", "-duration", "300ms", "-repeat", "2")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	t.Logf("\n%s", stdout)

	assert.Contains(t, stderr, sweep.FixedPoolNote, "the output says what the sweep varies")
	assert.Contains(t, stdout, sweep.FixedPoolNote)
	assert.Contains(t, stderr, "[cell 2 of 2] its own pool, concurrency 4")
	assert.Contains(t, stdout, "median of 2 runs per cell")
	assert.NotContains(t, stdout, "plateaus at pool", "no pool size was varied, so no knee")
	rows := 0
	for _, line := range strings.Split(stdout, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] != "own" {
			continue
		}
		rows++
		ok, err := strconv.ParseFloat(fields[3], 64)
		require.NoError(t, err, line)
		assert.Positive(t, ok, "the driver served calls: %s", line)
		assert.Regexp(t, `^[0-9.]+-[0-9.]+$`, fields[4], "throughput min-max: %s", line)
		assert.Regexp(t, `^\([0-9.]+\)$`, fields[5], "throughput standard deviation: %s", line)
	}
	assert.Equal(t, 2, rows, "one row per load")
}

func TestSweepClientFlagsRejectedWithExitCode2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"pools for a gallery client", []string{"-client", "small-idle-pool", "-pools", "1,2"}, "-pools given for the small-idle-pool client, whose pool is its own"},
		{"unknown client", []string{"-client", "nope"}, `-client "nope": not a client poolproof knows`},
		{"driver and client", []string{"-driver", "python3 d.py", "-client", "plain"}, "-driver and -client both given: sweep one client"},
		{"zero repeat", []string{"-repeat", "0"}, "-repeat 0: run each cell at least once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runSweepCmd(t, context.Background(), tc.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}

func TestSweepInterruptedExitsOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	started := time.Now()
	code, stdout, stderr := runSweepCmd(t, ctx, "-pools", "1,2", "-concurrency", "2", "-latency", "10ms", "-duration", "5s")
	assert.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "interrupted")
	assert.Contains(t, stderr, "context deadline exceeded")
	assert.Less(t, time.Since(started), 15*time.Second, "stops soon after the signal, environment closed")
}

// SIGINT mid-cell: the binary stops the cell, prints what it measured, closes
// the embedded environment and exits 1, promptly.
func TestSweepBinaryStopsOnSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "poolproof")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, "sweep", "-pools", "2,4", "-concurrency", "2", "-latency", "10ms", "-duration", "20s")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "[cell 1 of 2] pool 2") {
		require.True(t, time.Now().Before(deadline), "no progress line; stderr: %s", stderr.String())
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // inside the cell's workload
	signaled := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
	assert.Equal(t, 1, exit.ExitCode())
	assert.Less(t, time.Since(signaled), 15*time.Second, "a 20s cell is cut short")
	assert.Contains(t, stdout.String(), "interrupted")
	assert.Contains(t, stderr.String(), "context canceled")
}
