package harness_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/runmetrics"
)

// BenchmarkObserverOverhead compares, in one run, the runner's request rate
// with the run's metrics observing every call (runmetrics, as
// -metrics-addr feeds it) and without, alternating the two to cancel
// drift. It reports both rates and their ratio (goal >= 0.97).
func BenchmarkObserverOverhead(b *testing.B) {
	env := newBenchEnv(b)
	const phase = 2 * time.Second
	run := func(seed int64, opts ...harness.RunOption) (calls int64, took time.Duration) {
		env.srv.Reset()
		spec := harness.RunSpec{Scenario: "bench", Seed: seed, Profile: harness.DefaultProfile(),
			Workload: harness.Workload{Mode: harness.ClosedLoop, Workers: benchConcurrency, Duration: phase, Mix: harness.Mix{Inventory: 1}}}
		h, err := harness.Run(context.Background(), env, benchClient, spec, append(opts, harness.WithSettle(time.Second))...)
		if err != nil {
			b.Fatal(err)
		}
		return int64(len(h.Calls)), h.Elapsed
	}
	for range b.N {
		var without, with int64
		var withoutTime, withTime time.Duration
		m := runmetrics.New()
		for round := range 3 {
			n, d := run(int64(round))
			without, withoutTime = without+n, withoutTime+d
			n, d = run(int64(round), harness.WithObserver(m))
			with, withTime = with+n, withTime+d
		}
		withoutRate := float64(without) / withoutTime.Seconds()
		withRate := float64(with) / withTime.Seconds()
		b.ReportMetric(withoutRate, "plain_req/s")
		b.ReportMetric(withRate, "observed_req/s")
		b.ReportMetric(withRate/withoutRate, "observed/plain")
	}
}
