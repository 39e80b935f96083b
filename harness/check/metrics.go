package check

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// MetricsTruthful fails when a client's own pool metrics (a MetricsGatherer,
// or a driver's metrics_url) do not tell what the servers and the callers
// saw while the run went on:
//
//   - open connections: http_pool_active_connections + _idle_connections
//     against the servers' open connections at the same sample, within
//     max(Slack, Tolerance x the servers' count) (defaults 2 and 25%);
//   - active connections: against the calls in flight to the service at
//     the sample, capped by the open connections (a call waiting for a slot
//     holds no connection; on HTTP/2 one connection carries many), within
//     the same tolerance;
//   - errors: http_connection_errors_total grew by at least half the calls
//     that returned a connection error (reset, EOF, refused, TLS), when at
//     least MinErrors (default 5) did (a retried attempt counts too, so the
//     client's count may be higher).
//
// Each gauge comparison passes when at least MinAgree (default half) of the
// samples agree: the servers see a close a moment after the client, and a
// sample is not atomic. A stub that never moves, gauges swapped, errors
// never counted: each fails where the run makes them differ. Not
// applicable to a client that reports no metrics.
type MetricsTruthful struct {
	Tolerance  float64 `json:"tolerance,omitempty"`
	Slack      int     `json:"slack,omitempty"`
	MinAgree   float64 `json:"min_agree,omitempty"`
	MinErrors  int     `json:"min_errors,omitempty"`
	MinSamples int     `json:"min_samples,omitempty"`
}

func (MetricsTruthful) ID() string { return IDMetricsTruthful }

func (c MetricsTruthful) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "agreeing samples")
	tol := cmp.Or(c.Tolerance, 0.25)
	slack := cmp.Or(c.Slack, 2)
	minAgree := cmp.Or(c.MinAgree, 0.5)
	minErrors := cmp.Or(c.MinErrors, 5)
	minSamples := cmp.Or(c.MinSamples, 10)
	within := func(got, want int) bool {
		return math.Abs(float64(got-want)) <= math.Max(float64(slack), tol*float64(want))
	}

	var (
		judged []string
		worst  = 2.0
		notes  []string
	)
	for i, svc := range h.Services {
		var open, active, paired int
		var firstErr, lastErr int64 = -1, -1
		var badOpen, badActive string
		inFlight := callsInFlight(h, svc)
		for _, s := range h.Samples {
			if i >= len(s.Reported) || !s.Reported[i].Known() {
				continue
			}
			r := s.Reported[i]
			if firstErr < 0 {
				firstErr = r.Errors
			}
			lastErr = r.Errors
			if i >= len(s.ServerConns) || s.ServerConns[i] < 0 {
				continue
			}
			paired++
			srv := int(s.ServerConns[i])
			reported := int(r.Active + r.Idle)
			if within(reported, srv) {
				open++
			} else if badOpen == "" {
				badOpen = fmt.Sprintf("at %s it reported %d open (%d active, %d idle) where the servers had %d",
					harness.FormatDuration(time.Duration(s.At).Round(time.Millisecond)), reported, r.Active, r.Idle, srv)
			}
			want := min(inFlight.at(time.Duration(s.At)), srv)
			if within(int(r.Active), want) {
				active++
			} else if badActive == "" {
				badActive = fmt.Sprintf("at %s it reported %d active where %d calls held a connection (%d in flight, %d open at the servers)",
					harness.FormatDuration(time.Duration(s.At).Round(time.Millisecond)), r.Active, want, inFlight.at(time.Duration(s.At)), srv)
			}
		}
		if firstErr < 0 {
			continue
		}
		if paired < minSamples {
			notes = append(notes, fmt.Sprintf("%s: %d samples with server truth, need %d", svc, paired, minSamples))
			continue
		}
		judged = append(judged, svc)
		shareOpen, shareActive := float64(open)/float64(paired), float64(active)/float64(paired)
		if shareOpen < minAgree {
			return v.Fail(round2(shareOpen), minAgree, fmt.Sprintf("%s: the client's open connections (%s + %s) agreed with the servers' in %d of %d samples; %s: its pool metrics do not tell its pool",
				svc, harness.MetricActiveConnections, harness.MetricIdleConnections, open, paired, badOpen))
		}
		if shareActive < minAgree {
			return v.Fail(round2(shareActive), minAgree, fmt.Sprintf("%s: the client's %s agreed with the calls holding a connection in %d of %d samples; %s: count a connection active from the call's start to its body's end",
				svc, harness.MetricActiveConnections, active, paired, badActive))
		}
		worst = min(worst, shareOpen, shareActive)
		returned := connectionErrors(h, svc)
		counted := lastErr - firstErr
		if returned >= minErrors && counted*2 < int64(returned) {
			v.Unit = "errors"
			return v.Fail(float64(counted), float64((returned+1)/2), fmt.Sprintf("%s: %d calls returned a connection error but %s grew by %d: the client does not count its connection errors",
				svc, returned, harness.MetricConnectionErrors, counted))
		}
		if returned >= minErrors {
			notes = append(notes, fmt.Sprintf("%s: %d connection errors counted for %d returned", svc, counted, returned))
		}
	}
	if len(judged) == 0 {
		why := "the client reports no pool metrics: implement harness.MetricsGatherer (a Go client) or send metrics_url in init_ok (a driver) with " + harness.MetricActiveConnections + " and " + harness.MetricIdleConnections + " to have them judged"
		if len(notes) > 0 {
			why = strings.Join(notes, "; ")
		}
		return v.NotApplicable(why)
	}
	reason := fmt.Sprintf("%v: the client's pool metrics agreed with the servers' connections and the calls in flight in at least %.0f%% of the samples", judged, 100*worst)
	if len(notes) > 0 {
		reason += "; " + strings.Join(notes, "; ")
	}
	return v.Pass(round2(worst), minAgree, reason)
}

// inFlight holds the starts and ends of one service's calls, each sorted,
// so that the calls in flight at any moment are two binary searches away.
type inFlight struct{ starts, ends []time.Duration }

func callsInFlight(h *harness.History, service string) inFlight {
	id := harness.ServiceIDOf(service)
	var f inFlight
	for i := range h.Calls {
		if c := &h.Calls[i]; c.Service == id {
			f.starts = append(f.starts, time.Duration(c.Start))
			f.ends = append(f.ends, time.Duration(c.End))
		}
	}
	slices.Sort(f.starts)
	slices.Sort(f.ends)
	return f
}

// at counts the calls started and not ended at t (start <= t < end): a
// call that ended by t also started by it.
func (f inFlight) at(t time.Duration) int {
	started, _ := slices.BinarySearch(f.starts, t+1)
	ended, _ := slices.BinarySearch(f.ends, t+1)
	return started - ended
}

// connectionErrors counts the calls to service that returned an error of
// the connection itself.
func connectionErrors(h *harness.History, service string) int {
	id := harness.ServiceIDOf(service)
	kinds := []harness.ErrorClass{harness.ClassReset, harness.ClassEOF, harness.ClassConnRefused, harness.ClassTLS}
	n := 0
	for i := range h.Calls {
		if h.Calls[i].Service == id && slices.Contains(kinds, h.Calls[i].Class) {
			n++
		}
	}
	return n
}
