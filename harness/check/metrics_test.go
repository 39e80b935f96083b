package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// metricsRun is 2s of inventory with 12 calls in flight on 12 server
// connections (4 of them returned errors), sampled every 100ms; report
// says what the client's metrics claim at each sample.
func metricsRun(report func(at time.Duration) harness.ReportedPool) *harness.History {
	const inv = "inventory"
	b := newHB(inv)
	for w := range 12 {
		for t := time.Duration(0); t < 2*time.Second; t += 100 * time.Millisecond {
			class, status := harness.ClassNone, 200
			if w == 0 && t < 400*time.Millisecond {
				class, status = harness.ClassReset, 0
			}
			b.call(inv, t+time.Duration(w)*time.Millisecond, 95*time.Millisecond, status, class)
		}
	}
	for t := 50 * time.Millisecond; t < 2*time.Second; t += 100 * time.Millisecond {
		b.h.Samples = append(b.h.Samples, harness.Sample{At: int64(t), ServerConns: []int32{12}, Reported: []harness.ReportedPool{report(t)}})
	}
	return b.done()
}

func TestMetricsTruthful(t *testing.T) {
	errorsSoFar := func(at time.Duration) int64 { return int64(min(at/(100*time.Millisecond), 4)) }
	cases := []checkCase{
		{"truthful", MetricsTruthful{MinErrors: 4}, func() *harness.History {
			return metricsRun(func(at time.Duration) harness.ReportedPool {
				return harness.ReportedPool{Active: 12, Idle: 0, Errors: errorsSoFar(at)}
			})
		}, harness.StatusPass, []string{"[inventory]: the client's pool metrics agreed", "4 connection errors counted for 4 returned"}},
		{"a stub that never moves", MetricsTruthful{}, func() *harness.History {
			return metricsRun(func(time.Duration) harness.ReportedPool { return harness.ReportedPool{} })
		}, harness.StatusFail, []string{"open connections", "agreed with the servers' in 0 of 20 samples", "reported 0 open (0 active, 0 idle) where the servers had 12"}},
		{"active and idle swapped", MetricsTruthful{}, func() *harness.History {
			return metricsRun(func(at time.Duration) harness.ReportedPool {
				return harness.ReportedPool{Active: 0, Idle: 12, Errors: errorsSoFar(at)}
			})
		}, harness.StatusFail, []string{"http_pool_active_connections agreed with the calls holding a connection in 0 of 20", "reported 0 active where 12 calls held a connection"}},
		{"errors never counted", MetricsTruthful{MinErrors: 4}, func() *harness.History {
			return metricsRun(func(time.Duration) harness.ReportedPool { return harness.ReportedPool{Active: 12} })
		}, harness.StatusFail, []string{"4 calls returned a connection error but http_connection_errors_total grew by 0"}},
		{"no metrics reported", MetricsTruthful{}, func() *harness.History {
			h := metricsRun(func(time.Duration) harness.ReportedPool { return harness.ReportedPool{Active: 12} })
			for i := range h.Samples {
				h.Samples[i].Reported = nil
			}
			return h
		}, harness.StatusNotApplicable, []string{"reports no pool metrics", "metrics_url"}},
	}
	runCheckCases(t, cases)
}
