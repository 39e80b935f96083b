// Package dashboards holds the Grafana dashboards poolproof ships
// (poolproof-run.json: the run's metrics that -metrics-addr serves, beside
// the HTTP pool metrics a client exposes) and the names they may graph.
package dashboards

import "github.com/poolproof/poolproof/harness"

// PoolMetricNames are the HTTP pool metrics teams commonly graph and the
// dashboard expects the client under test to expose (the reference client
// does): active and idle connections (labels service, host), the wait for
// a connection (a histogram, label service) and connection errors (labels
// service, error_type).
// The names are those metrics.truthful reads (harness's Metric* names).
var PoolMetricNames = []string{
	harness.MetricActiveConnections,
	harness.MetricIdleConnections,
	harness.MetricPoolWait,
	harness.MetricConnectionErrors,
}
