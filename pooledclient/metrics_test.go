package pooledclient

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// labelsOf flattens a metric's labels.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// A scrape shows the four names teams graph, with their labels and the
// wait histogram's buckets; WithMetricsNamespace prefixes them.
func TestMetricsCarryTheCommonNames(t *testing.T) {
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	for _, ns := range []string{"", "checkout"} {
		t.Run("namespace "+ns, func(t *testing.T) {
			cfg := testConfig(srv.URL)
			c, reg := newTestClient(t, cfg, WithMetricsNamespace(ns))
			_, err := get(t, c, srv.URL)
			require.NoError(t, err)
			_, err = get(t, c, "http://127.0.0.1:1/") // refused: a connection error
			require.Error(t, err)

			prefix := ""
			if ns != "" {
				prefix = ns + "_"
			}
			families, err := reg.Gather()
			require.NoError(t, err)
			byName := map[string]*dto.MetricFamily{}
			for _, f := range families {
				byName[f.GetName()] = f
			}
			host := mustHost(t, srv.URL)
			for _, name := range []string{MetricActiveConnections, MetricIdleConnections} {
				f := byName[prefix+name]
				require.NotNil(t, f, "%s%s is exposed", prefix, name)
				assert.Equal(t, dto.MetricType_GAUGE, f.GetType())
				assert.Equal(t, map[string]string{"service": cfg.Name, "host": host}, labelsOf(f.GetMetric()[0]))
			}
			assert.Equal(t, 1.0, byName[prefix+MetricIdleConnections].GetMetric()[0].GetGauge().GetValue(), "the call's connection is idle in the pool")

			wait := byName[prefix+MetricPoolWait]
			require.NotNil(t, wait)
			require.Equal(t, dto.MetricType_HISTOGRAM, wait.GetType())
			assert.Equal(t, map[string]string{"service": cfg.Name}, labelsOf(wait.GetMetric()[0]))
			var bounds []float64
			for _, b := range wait.GetMetric()[0].GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
			assert.Equal(t, []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}, bounds)

			errs := byName[prefix+MetricConnectionErrors]
			require.NotNil(t, errs)
			require.Equal(t, dto.MetricType_COUNTER, errs.GetType())
			got := labelsOf(errs.GetMetric()[0])
			assert.Equal(t, cfg.Name, got["service"])
			assert.NotEmpty(t, got["error_type"])
			assert.Positive(t, errs.GetMetric()[0].GetCounter().GetValue())
		})
	}
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}
