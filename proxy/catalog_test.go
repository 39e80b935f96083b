package proxy_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/proxy"
	"github.com/poolproof/poolproof/scenarios"
)

// long skips a whole certification under -short and under the race
// detector, which distorts the timing verdicts it would judge (make test
// runs these in its race-free pass).
func long(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("certifies the proxy catalog: minutes")
	}
	testenv.SkipUnderRace(t)
}

// promised is what the shipped configurations promise: fail_timeout=2s
// (nginx), health checks every 500ms (HAProxy).
var promised = scenarios.ProxyOptions{FailTimeout: 2 * time.Second}

// The shipped configurations that should pass pass the whole catalog.
func TestProxiesShippedConfigsCertify(t *testing.T) {
	long(t)
	for _, tc := range []struct{ kind, file string }{
		{proxy.Nginx, shipped("nginx-keepalive.conf")},
		{proxy.HAProxy, shipped("haproxy.cfg")},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			cert := certify(t, tc.kind, tc.file, promised)
			var lines []string
			for _, v := range append(cert.Failures(), cert.NotApplicable()...) {
				lines = append(lines, v.String())
			}
			require.True(t, cert.Passed(), "%s must pass the proxy catalog:\n%s", tc.file, strings.Join(lines, "\n"))
			assert.Empty(t, cert.NotApplicable(), "every proxy check can be judged")
			assert.Len(t, cert.Results, len(scenarios.ProxyNames()))
		})
	}
}

// Every proxy check is proven able to fail by a configuration with one
// classic mistake (proxy/testdata, and the shipped nginx-no-http11.conf),
// as the broken-client gallery proves the client checks.
func TestProxiesBrokenConfigsAreCaught(t *testing.T) {
	long(t)
	caught := map[string]bool{}
	for _, tc := range []struct {
		mistake, kind, file string
		opts                scenarios.ProxyOptions
		scenario, check     string
		reason              string
	}{
		{"keepalive without proxy_http_version 1.1", proxy.Nginx, shipped("nginx-no-http11.conf"), promised,
			scenarios.UpstreamReuse, check.IDProxyUpstreamReuse, "as HTTP/1.0"},
		{"keepalive read as a limit on connections", proxy.Nginx, shipped("nginx-keepalive.conf"), scenarios.ProxyOptions{FailTimeout: promised.FailTimeout, MaxUpstreamConns: 4},
			scenarios.UpstreamBound, check.IDProxyUpstreamBound, "max_conns on the server line limits them"},
		{"idle upstream connections outlive the upstream's", proxy.Nginx, "testdata/nginx-keepalive-outlives-upstream.conf", promised,
			scenarios.UpstreamKeepAliveRace, check.IDProxyErrors, "by the proxy (502"},
		{"a replica's 503s passed on", proxy.Nginx, "testdata/nginx-passes-503.conf", promised,
			scenarios.ReplicaFailing, check.IDProxyFailover, "does not take a failing replica out"},
		{"fail_timeout longer than promised", proxy.Nginx, "testdata/nginx-long-fail-timeout.conf", promised,
			scenarios.ReplicaDown, check.IDProxyFailover, "keeps a recovered replica out too long"},
		{"POST retried on the next replica (nginx)", proxy.Nginx, "testdata/nginx-retries-post.conf", promised,
			scenarios.ProxyProcessThenFail, check.IDLedgerNoDuplicate, "a retried charge the server had already processed was processed again"},
		{"POST retried on the next replica (HAProxy)", proxy.HAProxy, "testdata/haproxy-retries-post.cfg", promised,
			scenarios.ProxyProcessThenFail, check.IDLedgerNoDuplicate, "a retried charge the server had already processed was processed again"},
	} {
		t.Run(tc.mistake, func(t *testing.T) {
			v := verdict(t, certify(t, tc.kind, tc.file, tc.opts, tc.scenario), tc.scenario, tc.check)
			t.Logf("| %s | `%s` | %s: %s = %v %s |", tc.mistake, filepath.Base(tc.file), tc.scenario, tc.check, v.Measured, v.Unit)
			if assert.Equal(t, harness.StatusFail, v.Status, "%s", v) {
				caught[tc.check] = true
			}
			assert.Contains(t, v.Reason, tc.reason)
		})
	}
	for _, id := range check.ProxyChecks() {
		assert.True(t, caught[id.ID()], "no broken configuration is caught by %s", id.ID())
	}
}
