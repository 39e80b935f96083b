package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/poolproof/poolproof/harness"
)

// Bucket widths of a timeline: narrow enough to show a fault's edges, wide
// enough that a bucket holds several calls of an ordinary workload.
const (
	minBucket     = 100 * time.Millisecond
	maxBucket     = 250 * time.Millisecond
	targetBuckets = 200
)

// Latencies are recorded in microseconds, from 1µs to an hour: wider than any
// watchdog, so a hung call is counted, not dropped.
const (
	latencyLowestMicros  = 1
	latencyHighestMicros = int64(time.Hour / time.Microsecond)
	latencySigFigs       = 3
)

// Timeline is one run's history reduced to what its charts draw. Times are
// seconds since the workload started.
type Timeline struct {
	Bucket  time.Duration
	Buckets []TimelineBucket
	// Conns is the server-side open connections per service, in the order of
	// History.Services, read at each sample that had them.
	Conns []ServiceSeries
	// Goroutines and InFlight are the client's, at every sample.
	Goroutines []Point
	InFlight   []Point
	// Hung are the calls the watchdog ended (ClassHang): when each ended,
	// and its latency in milliseconds; the latency chart marks each one.
	Hung     []Point
	Windows  []harness.Window
	Steps    []harness.StepRecord
	Services []string
	End      float64
}

// TimelineBucket is the calls that ended in [Start, Start+Bucket).
type TimelineBucket struct {
	Start      float64 // seconds
	Calls      int
	Failed     int
	Throughput float64 // calls ended per second
	ErrorRate  float64 // failed/calls in percent; 0 when Calls is 0
	// P50 and P99 are latencies in milliseconds, from an HDR histogram of the
	// bucket's calls; 0 when Calls is 0.
	P50, P99 float64
	// Max is the slowest call's latency in milliseconds: a few hung calls
	// among thousands never reach the p99.
	Max float64
}

// Point is one reading: At in seconds.
type Point struct{ At, Value float64 }

// ServiceSeries is one service's readings.
type ServiceSeries struct {
	Service string
	Points  []Point
}

// bucketWidth picks the width that gives about targetBuckets buckets,
// clamped to [minBucket, maxBucket].
func bucketWidth(elapsed time.Duration) time.Duration {
	w := (elapsed / targetBuckets).Round(10 * time.Millisecond)
	return min(max(w, minBucket), maxBucket)
}

// NewTimeline reduces h to its timeline. Calls are bucketed by when they
// ended, which is when the client saw their outcome.
func NewTimeline(h *harness.History) Timeline {
	end := h.Elapsed
	for _, c := range h.Calls {
		end = max(end, time.Duration(c.End))
	}
	for _, s := range h.Samples {
		end = max(end, time.Duration(s.At))
	}
	tl := Timeline{Bucket: bucketWidth(end), Steps: h.Steps, Services: h.Services, End: end.Seconds()}

	n := int(end/tl.Bucket) + 1
	tl.Buckets = make([]TimelineBucket, n)
	for i := range tl.Buckets {
		tl.Buckets[i].Start = (time.Duration(i) * tl.Bucket).Seconds()
	}
	calls := slices.Clone(h.Calls)
	slices.SortFunc(calls, func(a, b harness.CallRecord) int { return cmp.Compare(a.End, b.End) })
	hist := hdrhistogram.New(latencyLowestMicros, latencyHighestMicros, latencySigFigs)
	flush := func(i int) {
		b := &tl.Buckets[i]
		if b.Calls == 0 {
			return
		}
		b.Throughput = float64(b.Calls) / tl.Bucket.Seconds()
		b.ErrorRate = 100 * float64(b.Failed) / float64(b.Calls)
		b.P50 = float64(hist.ValueAtQuantile(50)) / 1000
		b.P99 = float64(hist.ValueAtQuantile(99)) / 1000
		b.Max = float64(hist.Max()) / 1000
		hist.Reset()
	}
	cur := 0
	for _, c := range calls {
		i := min(max(int(time.Duration(c.End)/tl.Bucket), 0), n-1)
		if i != cur {
			flush(cur)
			cur = i
		}
		tl.Buckets[i].Calls++
		if !c.OK() {
			tl.Buckets[i].Failed++
		}
		us := min(max(c.Latency().Microseconds(), latencyLowestMicros), latencyHighestMicros)
		_ = hist.RecordValue(us) // in range by the clamp above
		if c.Class == harness.ClassHang {
			tl.Hung = append(tl.Hung, Point{time.Duration(c.End).Seconds(), float64(c.Latency().Microseconds()) / 1000})
		}
	}
	flush(cur)

	tl.Conns = make([]ServiceSeries, len(h.Services))
	for i, svc := range h.Services {
		tl.Conns[i].Service = svc
	}
	for _, s := range h.Samples {
		at := time.Duration(s.At).Seconds()
		tl.Goroutines = append(tl.Goroutines, Point{at, float64(s.Goroutines)})
		tl.InFlight = append(tl.InFlight, Point{at, float64(s.InFlight)})
		for i, c := range s.ServerConns {
			if i < len(tl.Conns) && c >= 0 {
				tl.Conns[i].Points = append(tl.Conns[i].Points, Point{at, float64(c)})
			}
		}
	}
	for _, svc := range h.Services {
		tl.Windows = append(tl.Windows, harness.FaultWindows(h, svc)...)
	}
	slices.SortStableFunc(tl.Windows, func(a, b harness.Window) int { return cmp.Compare(a.Start, b.Start) })
	return tl
}

// charts lists the charts of a timeline, in the order the page shows them.
func (tl Timeline) charts() []chartSpec {
	mid := tl.Bucket.Seconds() / 2
	var tput, errRate, p50, p99, slowest []Point
	for _, b := range tl.Buckets {
		at := b.Start + mid
		tput = append(tput, Point{at, b.Throughput})
		if b.Calls == 0 { // no call ended: no rate, no latency, a gap in the line
			errRate = append(errRate, Point{at, math.NaN()})
			p50 = append(p50, Point{at, math.NaN()})
			p99 = append(p99, Point{at, math.NaN()})
			slowest = append(slowest, Point{at, math.NaN()})
			continue
		}
		errRate = append(errRate, Point{at, b.ErrorRate})
		p50 = append(p50, Point{at, b.P50})
		p99 = append(p99, Point{at, b.P99})
		slowest = append(slowest, Point{at, b.Max})
	}
	latency := []series{{name: "p50", points: p50}, {name: "p99", points: p99, dashed: true}, {name: "slowest", points: slowest, dotted: true}}
	title := "Latency p50, p99 and slowest call (" + tl.Bucket.String() + " buckets)"
	if len(tl.Hung) > 0 {
		latency = append(latency, series{name: fmt.Sprintf("hung: %d calls the watchdog ended", len(tl.Hung)), points: tl.Hung, marks: true})
		title = fmt.Sprintf("Latency p50, p99 and slowest call (%s buckets); %d hung calls marked", tl.Bucket, len(tl.Hung))
	}
	bucket := tl.Bucket.String()
	conns := make([]series, len(tl.Conns))
	for i, c := range tl.Conns {
		conns[i] = series{name: c.Service, points: c.Points}
	}
	return []chartSpec{
		{id: "throughput", title: "Throughput (calls ended per second, " + bucket + " buckets)", yLabel: "calls/s",
			series: []series{{name: "calls/s", points: tput}}},
		{id: "errors", title: "Error rate (failed calls, " + bucket + " buckets)", yLabel: "% failed",
			series: []series{{name: "% failed", points: errRate}}},
		{id: "latency", title: title, yLabel: "ms", series: latency},
		{id: "server-conns", title: "Open connections seen by the servers", yLabel: "connections",
			series: conns, legend: true},
		{id: "goroutines", title: "Client goroutines and calls in flight", yLabel: "count",
			series: []series{{name: "goroutines", points: tl.Goroutines}, {name: "in flight", points: tl.InFlight, dashed: true}}},
	}
}
