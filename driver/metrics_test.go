package driver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

// A driver's metrics_url is scraped in Prometheus' text format, only on
// loopback, and what it says of a service's pool reaches the harness.
func TestGatherMetricsScrapesTheDriversURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `# TYPE orders_http_pool_active_connections gauge
orders_http_pool_active_connections{service="inventory",host="127.0.0.1:1"} 3
# TYPE orders_http_pool_idle_connections gauge
orders_http_pool_idle_connections{service="inventory",host="127.0.0.1:1"} 5
# TYPE orders_http_connection_errors_total counter
orders_http_connection_errors_total{service="inventory",error_type="reset"} 2
orders_http_connection_errors_total{service="inventory",error_type="timeout"} 1
`)
	}))
	defer srv.Close()
	p := newProcess("metrics-driver", newOptions([]Option{WithInitTimeout(time.Second)}))
	p.info.MetricsURL = srv.URL + "/metrics"
	fams, err := p.GatherMetrics()
	require.NoError(t, err)
	assert.Len(t, fams, 3)
	got := harness.PoolFromMetrics(fams, "inventory")
	assert.Equal(t, harness.ReportedPool{Active: 3, Idle: 5, Errors: 3}, got)

	p.info.MetricsURL = ""
	_, err = p.GatherMetrics()
	assert.ErrorIs(t, err, ErrNoMetrics)
	for _, bad := range []string{"https://127.0.0.1:1/metrics", "http://10.1.2.3:9090/metrics", "http://localhost:9090/metrics", "http://example.com/metrics"} {
		p.info.MetricsURL = bad
		_, err = p.GatherMetrics()
		assert.Error(t, err, bad)
	}
}
