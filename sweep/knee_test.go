package sweep

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestKneeOf(t *testing.T) {
	ms := time.Millisecond
	cell := func(pool int, tput, errRate float64, p99 time.Duration) Cell {
		ok := int(tput)
		if tput > 0 && ok == 0 {
			ok = 1
		}
		return Cell{Pool: pool, Calls: 1000, Throughput: tput, OK: ok, ErrorRate: errRate, P99: p99, P50: p99 / 2, Mean: p99 / 2}
	}
	for _, tc := range []struct {
		name        string
		cells       []Cell
		rate        float64
		concurrency int
		want        Knee
	}{
		{
			name:        "closed loop: Little's law never asks for more connections than workers",
			cells:       []Cell{cell(16, 320, 0, 110*ms), cell(32, 624, 0, 104*ms)},
			concurrency: 32,
			want:        Knee{Concurrency: 32, MaxThroughput: 624, Plateau: 32, AtEdge: true, LowestP99: 32, LittleRate: 624, LittleLatency: 52 * ms, LittleEstimate: 32, LittleGrid: 32},
		},
		{
			name:  "plateau at the first pool within 95% of the best",
			cells: []Cell{cell(1, 20, 0.5, 150*ms), cell(2, 40, 0.3, 150*ms), cell(4, 96, 0, 60*ms), cell(8, 100, 0, 52*ms), cell(16, 99, 0, 55*ms)},
			want:  Knee{MaxThroughput: 100, Plateau: 4, LowestP99: 8, ErrorsBegin: 2, LittleRate: 100, LittleLatency: 27500 * time.Microsecond, LittleEstimate: 2.75, LittleGrid: 4},
		},
		{
			name:  "94% is not on the plateau; cells in any order",
			cells: []Cell{cell(8, 100, 0, 50*ms), cell(4, 94, 0, 50*ms), cell(2, 50, 0, 80*ms)},
			want:  Knee{MaxThroughput: 100, Plateau: 8, AtEdge: true, LowestP99: 4, LittleRate: 100, LittleLatency: 25 * ms, LittleEstimate: 2.5, LittleGrid: 4},
		},
		{
			name:  "a fault's error rate everywhere is the floor, not the onset",
			cells: []Cell{cell(1, 10, 0.30, 100*ms), cell(2, 20, 0.06, 100*ms), cell(4, 20, 0.05, 100*ms)},
			want:  Knee{MaxThroughput: 20, Plateau: 2, LowestP99: 1, ErrorsBegin: 1, LittleRate: 20, LittleLatency: 50 * ms, LittleEstimate: 1, LittleGrid: 1},
		},
		{
			name: "a rise within chance over few calls is not an onset; the same rise over many is",
			cells: []Cell{
				{Pool: 1, Calls: 4000, OK: 3700, Throughput: 74, ErrorRate: 0.075, P99: 120 * ms, Mean: 110 * ms},
				{Pool: 2, Calls: 40, OK: 37, Throughput: 37, ErrorRate: 0.075, P99: 250 * ms, Mean: 240 * ms},
				{Pool: 8, Calls: 300, OK: 288, Throughput: 288, ErrorRate: 0.04, P99: 50 * ms, Mean: 30 * ms},
			},
			want: Knee{MaxThroughput: 288, Plateau: 8, AtEdge: true, LowestP99: 8, ErrorsBegin: 1, LittleRate: 288, LittleLatency: 30 * ms, LittleEstimate: 8.64}, // 9 connections: beyond the grid
		},
		{
			name:  "open loop: Little's law uses the offered rate; the grid may stop short",
			cells: []Cell{cell(2, 40, 0.8, 150*ms), cell(4, 80, 0.6, 150*ms)},
			rate:  200,
			want:  Knee{Rate: 200, MaxThroughput: 80, Plateau: 4, AtEdge: true, LowestP99: 2, ErrorsBegin: 2, LittleRate: 200, LittleLatency: 75 * ms, LittleEstimate: 15},
		},
		{
			name:  "nothing succeeded: no plateau, Little's law from the injected latency",
			cells: []Cell{{Pool: 1, ErrorRate: 1}, {Pool: 2, ErrorRate: 1}},
			want:  Knee{LittleLatency: 40 * ms},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Rate: tc.rate, Latency: 40 * ms}.withDefaults()
			got := kneeOf(tc.cells, tc.concurrency, cfg)
			assert.InDelta(t, tc.want.LittleEstimate, got.LittleEstimate, 1e-9)
			got.LittleEstimate = tc.want.LittleEstimate
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFaultActions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		wantKinds []string
		httpKinds []string
	}{
		{"nothing to inject", Config{}, nil, nil},
		{"latency as a toxic", Config{Latency: 10 * time.Millisecond}, []string{"add_toxic"}, nil},
		{"latency in the server with 5xx: one set of HTTP faults", Config{Latency: 10 * time.Millisecond, LatencyVia: ViaServer, Fault: Fault5xx},
			[]string{"set_http_faults"}, []string{"delay", "status"}},
		{"latency as a toxic with resets", Config{Latency: 10 * time.Millisecond, Fault: FaultResets},
			[]string{"add_toxic", "set_http_faults"}, []string{"process_then_fail"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acts := faultActions(tc.cfg.withDefaults())
			var kinds, httpKinds []string
			for _, a := range acts {
				kinds = append(kinds, a.Kind)
				assert.Equal(t, DefaultService, a.Service)
				for _, f := range a.HTTPFaults {
					httpKinds = append(httpKinds, f.Kind)
				}
			}
			assert.Equal(t, tc.wantKinds, kinds)
			assert.Equal(t, tc.httpKinds, httpKinds)
		})
	}
}
