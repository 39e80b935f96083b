package report

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

// handHistory is a 1s run on inventory with a known shape: 100ms buckets;
// bucket 0 has 10 calls of 1..10ms, all OK; bucket 1 has 4 calls of 100ms,
// one failed; buckets 2-4 have no call (a proxy outage from 200ms to 500ms);
// the rest have one 2ms call each.
func handHistory() *harness.History {
	h := &harness.History{Scenario: "hand", Services: []string{"inventory", "payment"}, Elapsed: time.Second}
	call := func(endMs, latMs float64, ok bool) {
		c := harness.CallRecord{
			Start:   int64((endMs - latMs) * float64(time.Millisecond)),
			End:     int64(endMs * float64(time.Millisecond)),
			Status:  200,
			Service: harness.ServiceInventory,
		}
		if !ok {
			c.Status, c.Class = 0, harness.ClassReset
		}
		h.Calls = append(h.Calls, c)
	}
	for i := 1; i <= 10; i++ {
		call(float64(i)*9, float64(i), true)
	}
	for i := range 4 {
		call(150+float64(i), 100, i != 2)
	}
	for b := 5; b < 10; b++ {
		call(float64(b)*100+50, 2, true)
	}
	h.Steps = []harness.StepRecord{
		{Step: harness.Step{At: 200 * time.Millisecond, Label: "inventory down", Action: harness.DisableProxy("inventory")}, Started: 200 * time.Millisecond, Ended: 201 * time.Millisecond, Outcome: harness.StepApplied},
		{Step: harness.Step{At: 500 * time.Millisecond, Label: "inventory up", Action: harness.EnableProxy("inventory")}, Started: 500 * time.Millisecond, Ended: 501 * time.Millisecond, Outcome: harness.StepApplied},
	}
	for i := range 10 {
		conns := []int32{int32(i), -1} // payment's connections were never read
		h.Samples = append(h.Samples, harness.Sample{At: int64(i) * int64(100*time.Millisecond), Goroutines: int32(10 + i), InFlight: 2, ServerConns: conns})
	}
	return h
}

func TestNewTimelineBuckets(t *testing.T) {
	tl := NewTimeline(handHistory())
	require.Equal(t, 100*time.Millisecond, tl.Bucket)
	require.GreaterOrEqual(t, len(tl.Buckets), 10)

	b0 := tl.Buckets[0]
	assert.Equal(t, 10, b0.Calls)
	assert.Equal(t, 0, b0.Failed)
	assert.InDelta(t, 100, b0.Throughput, 1e-9, "10 calls in 100ms")
	assert.InDelta(t, 5, b0.P50, 0.05, "median of 1..10ms")
	assert.InDelta(t, 10, b0.P99, 0.05)

	b1 := tl.Buckets[1]
	assert.Equal(t, 4, b1.Calls)
	assert.Equal(t, 1, b1.Failed)
	assert.InDelta(t, 25, b1.ErrorRate, 1e-9)
	assert.InDelta(t, 100, b1.P99, 0.1)

	for _, b := range tl.Buckets[2:5] {
		assert.Zero(t, b.Calls, "no call ended during the outage")
		assert.Zero(t, b.Throughput)
	}
	assert.InDelta(t, 2, tl.Buckets[5].P50, 0.01)

	require.Len(t, tl.Windows, 1)
	assert.Equal(t, "inventory", tl.Windows[0].Service)
	assert.Equal(t, 200*time.Millisecond, tl.Windows[0].Start)
	assert.Equal(t, 500*time.Millisecond, tl.Windows[0].End)

	require.Len(t, tl.Conns, 2)
	assert.Len(t, tl.Conns[0].Points, 10)
	assert.Empty(t, tl.Conns[1].Points, "-1 readings are not drawn as zero")
	assert.Len(t, tl.Goroutines, 10)
}

func TestTimelineChartsBreakLinesWhereNoCallEnded(t *testing.T) {
	charts := NewTimeline(handHistory()).charts()
	ids := make([]string, len(charts))
	for i, c := range charts {
		ids[i] = c.id
	}
	assert.Equal(t, []string{"throughput", "errors", "latency", "server-conns", "goroutines"}, ids)
	errRate := charts[1].series[0].points
	assert.True(t, math.IsNaN(errRate[3].Value), "no rate where no call ended")
	assert.Len(t, segments(errRate), 2, "the error-rate line is broken across the outage")
	assert.Len(t, segments(charts[0].series[0].points), 1, "throughput is 0 during the outage, not missing")
}

func TestBucketWidth(t *testing.T) {
	for _, tc := range []struct {
		elapsed, want time.Duration
	}{
		{time.Second, 100 * time.Millisecond},
		{30 * time.Second, 150 * time.Millisecond},
		{10 * time.Minute, 250 * time.Millisecond},
	} {
		assert.Equal(t, tc.want, bucketWidth(tc.elapsed), tc.elapsed)
	}
}

func TestHistoryFileNameStaysInTheFolder(t *testing.T) {
	for in, want := range map[string]string{
		"blackhole":   "blackhole.json.gz",
		"../../etc/x": "_.._etc_x.json.gz",
		"a b/c":       "a_b_c.json.gz",
		"..":          "scenario.json.gz",
	} {
		assert.Equal(t, want, HistoryFileName(in), in)
	}
}

// A hung call is marked on the latency chart on its own, and the slowest
// call of its bucket is drawn, where the p99 of thousands would hide it.
func TestLatencyChartShowsHungCalls(t *testing.T) {
	h := handHistory()
	h.Calls = append(h.Calls, harness.CallRecord{Start: 0, End: int64(950 * time.Millisecond), Service: harness.ServiceInventory, Class: harness.ClassHang})
	tl := NewTimeline(h)
	require.Len(t, tl.Hung, 1)
	assert.InDelta(t, 0.95, tl.Hung[0].At, 1e-9)
	assert.InDelta(t, 950, tl.Hung[0].Value, 1)
	assert.InDelta(t, 950, tl.Buckets[9].Max, 1, "the slowest call of its bucket")

	var latency chartSpec
	for _, c := range tl.charts() {
		if c.id == "latency" {
			latency = c
		}
	}
	assert.Contains(t, latency.title, "1 hung calls marked")
	var marked []series
	for _, s := range latency.series {
		if s.marks {
			marked = append(marked, s)
		}
	}
	require.Len(t, marked, 1)
	assert.Equal(t, "hung: 1 calls the watchdog ended", marked[0].name)

	quiet := NewTimeline(handHistory())
	assert.Empty(t, quiet.Hung)
	for _, c := range quiet.charts() {
		if c.id == "latency" {
			assert.NotContains(t, c.title, "hung")
		}
	}
}
