package sweepreport_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/sweep"
	"github.com/poolproof/poolproof/sweep/sweepreport"
)

func sampleSweep() *sweep.Result {
	r := &sweep.Result{
		Service: "inventory", Latency: 50 * time.Millisecond, LatencyVia: sweep.ViaToxic, Fault: sweep.FaultNone,
		Mode: harness.ClosedLoop, Pools: []int{2, 4, 8, 16}, Concurrency: []int{8, 32}, Duration: time.Second,
		Seed: 1, Environment: "embedded", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Elapsed: 9 * time.Second,
		Cores: 2, RuleOfThumb: 5,
	}
	for _, c := range []int{8, 32} {
		for _, p := range r.Pools {
			used := min(p, c)
			r.Cells = append(r.Cells, sweep.Cell{
				Pool: p, Concurrency: c, Calls: 20 * used, OK: 20 * used, Throughput: 20 * float64(used),
				P50: 50 * time.Millisecond, P99: time.Duration(c/used) * 55 * time.Millisecond,
				PeakConns: used, Attempts: 20*used + 1, Faulted: 1,
			})
		}
	}
	r.Knees = []sweep.Knee{
		{Concurrency: 8, MaxThroughput: 160, Plateau: 8, LowestP99: 8, LittleRate: 160, LittleLatency: 50 * time.Millisecond, LittleEstimate: 8, LittleGrid: 8},
		{Concurrency: 32, MaxThroughput: 320, Plateau: 16, AtEdge: true, LowestP99: 16, ErrorsBegin: 4, LittleRate: 320, LittleLatency: 50 * time.Millisecond, LittleEstimate: 16, LittleGrid: 16},
	}
	return r
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	r := sampleSweep()
	files, err := sweepreport.Write(dir, r)
	require.NoError(t, err)

	page, err := os.ReadFile(files.HTML)
	require.NoError(t, err)
	html := string(page)
	for _, want := range []string{
		`data-chart="sweep-throughput"`, `data-chart="sweep-p99"`, // both charts, inline
		"concurrency 8", "concurrency 32", // one line per load level, in the legends
		"pool 16 (&gt;= 95% of the best 320.0 ok/s)", // the measured answer
		"16.0 connections (pool 16 on this grid)",    // Little's law
		"2 * 2 + 1 = 5",     // the rule of thumb
		`<tr class="knee">`, // the knee row highlighted
		"errors begin at pool 4 and below",
		"<td>16</td><td>321</td><td>1</td>",     // peak conns, attempts, faulted of the knee cell
		"The plateau is the largest pool swept", // concurrency 32 plateaus at 16, the last pool
	} {
		assert.Contains(t, html, want)
	}
	// The knee is marked on the charts: one label per load level per chart.
	assert.Equal(t, 4, strings.Count(html, ">knee<"), "a knee label per load level on each of the two charts")
	// Self-contained: no URL, no external resource of any kind.
	for _, banned := range []string{"http://", "https://", "src=", "href=", "@import", "url("} {
		assert.NotContains(t, html, banned)
	}

	data, err := os.ReadFile(files.JSON)
	require.NoError(t, err)
	var back sweep.Result
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, r.Knees, back.Knees)
	assert.Equal(t, r.Cells, back.Cells)
}

func TestWriteRefusesUnwritableDir(t *testing.T) {
	file := t.TempDir() + "/a-file"
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := sweepreport.Write(file+"/sub", sampleSweep())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "choose a folder you can write to")
	_, err = sweepreport.Write(t.TempDir(), nil)
	require.Error(t, err)
}
