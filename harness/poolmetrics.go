package harness

import (
	"context"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/poolproof/poolproof/internal/bounded"
)

// The names of the HTTP pool metrics teams graph, which poolproof reads
// from a client that reports its own (MetricsGatherer) to hold them to
// the servers' truth. A name may carry a namespace prefix
// ("checkout_http_pool_active_connections"): the suffix is matched.
const (
	MetricActiveConnections = "http_pool_active_connections" // gauge {service, host}
	MetricIdleConnections   = "http_pool_idle_connections"   // gauge {service, host}
	MetricPoolWait          = "http_pool_wait_seconds"       // histogram {service}
	MetricConnectionErrors  = "http_connection_errors_total" // counter {service, error_type}
)

// MetricsGatherer is an optional Client extension: the client's own pool
// metrics, as a Prometheus scrape of them gives (the metric names above,
// with a service label). The sampler reads them with every sample, and
// the metrics.truthful check holds them to what the servers and the
// callers saw. A driver reports them through the metrics_url of its
// init_ok.
type MetricsGatherer interface {
	GatherMetrics() ([]*dto.MetricFamily, error)
}

// ReportedPool is what a client's own metrics said of one service's pool
// at a sample; Active is -1 when they said nothing of it.
type ReportedPool struct {
	Active int32 `json:"active"`
	Idle   int32 `json:"idle"`
	// Errors is http_connection_errors_total, summed over error types.
	Errors int64 `json:"errors"`
}

// Known reports whether the metrics said anything of the pool.
func (p ReportedPool) Known() bool { return p.Active >= 0 }

var unknownPool = ReportedPool{Active: -1, Idle: -1, Errors: -1}

// reportedPools reads, for each of names, what its client's own metrics
// say, each distinct client gathered once and within bound; nil when no
// client reports any.
func reportedPools(ctx context.Context, names []string, clientOf func(string) Client, bound time.Duration) []ReportedPool {
	var (
		out      []ReportedPool
		gathered map[MetricsGatherer][]*dto.MetricFamily // made at the first gatherer: most clients report nothing
	)
	for i, name := range names {
		g, ok := clientOf(name).(MetricsGatherer)
		if !ok {
			continue
		}
		fams, seen := gathered[g]
		if !seen {
			var got []*dto.MetricFamily
			err, abandoned := bounded.Call(ctx, bound, 0, func(context.Context) error {
				var err error
				got, err = g.GatherMetrics()
				return err
			})
			if err == nil && !abandoned {
				fams = got
			}
			if gathered == nil {
				gathered = map[MetricsGatherer][]*dto.MetricFamily{}
			}
			gathered[g] = fams
		}
		p := PoolFromMetrics(fams, name)
		if !p.Known() {
			continue
		}
		if out == nil {
			out = make([]ReportedPool, len(names))
			for j := range out {
				out[j] = unknownPool
			}
		}
		out[i] = p
	}
	return out
}

// PoolFromMetrics sums, over hosts and error types, the pool metrics of
// service (names matched by suffix, so a namespace prefix is fine); the
// pool is unknown (Known false) when the families hold neither connection
// gauge for it.
func PoolFromMetrics(fams []*dto.MetricFamily, service string) ReportedPool {
	p := ReportedPool{}
	found := false
	for _, f := range fams {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			if labelValue(m, "service") != service {
				continue
			}
			switch {
			case strings.HasSuffix(name, MetricActiveConnections):
				p.Active += int32(m.GetGauge().GetValue())
				found = true
			case strings.HasSuffix(name, MetricIdleConnections):
				p.Idle += int32(m.GetGauge().GetValue())
				found = true
			case strings.HasSuffix(name, MetricConnectionErrors):
				p.Errors += int64(m.GetCounter().GetValue())
			}
		}
	}
	if !found {
		return unknownPool
	}
	return p
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
