package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/harnesstest"
	"github.com/poolproof/poolproof/internal/proctest"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/proxy"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/scenarios"
)

// The tests named TestProxies* need nginx and haproxy: CI sets
// POOLPROOF_REQUIRE_PROXIES=1 so that they fail, not skip, without them.

// shipped is a configuration of proxies/.
func shipped(name string) string { return filepath.Join("..", "proxies", name) }

// tmpDir points the proxy's temporary folder into a folder of the test,
// where what it leaves behind can be found.
func tmpDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return dir
}

// open starts kind from file for the test, closed at its end.
func open(t *testing.T, kind, file string) *proxy.Environment {
	t.Helper()
	testenv.ProxyBinary(t, kind)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := proxy.Open(ctx, proxy.Config{Kind: kind, File: file})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, e.Close()) })
	return e
}

// ports are the ports the proxy listens on for its services.
func ports(t *testing.T, e *proxy.Environment) []int {
	t.Helper()
	var out []int
	for _, s := range e.Services() {
		_, p, err := net.SplitHostPort(strings.TrimPrefix(s.BaseURL, "http://"))
		require.NoError(t, err)
		n, err := strconv.Atoi(p)
		require.NoError(t, err)
		out = append(out, n)
	}
	return out
}

func TestProxiesRejectASyntaxErrorInOneLineAndLeaveNothing(t *testing.T) {
	for _, tc := range []struct {
		kind, shipped, broken, replaced string
		want                            []string
	}{
		{proxy.Nginx, "nginx-keepalive.conf", "    kepalive 32;", "    keepalive 32;", []string{`nginx: [emerg] unknown directive "kepalive" in `}},
		{proxy.HAProxy, "haproxy.cfg", "    retrys 2", "    retries 2", []string{"haproxy: [ALERT] ", "unknown keyword 'retrys'"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			testenv.ProxyBinary(t, tc.kind)
			b, err := os.ReadFile(shipped(tc.shipped))
			require.NoError(t, err)
			require.Contains(t, string(b), tc.replaced+"\n")
			line := strings.Count(string(b)[:strings.Index(string(b), tc.replaced+"\n")], "\n") + 1
			bad := filepath.Join(t.TempDir(), "bad.conf")
			require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(b), tc.replaced+"\n", tc.broken+"\n", 1)), 0o600))
			dir := tmpDir(t)

			_, err = proxy.Open(context.Background(), proxy.Config{Kind: tc.kind, File: bad})
			require.ErrorIs(t, err, proxy.ErrConfigRejected)
			assert.True(t, proxy.Unusable(err), "the user's to fix")
			msg := err.Error()
			assert.NotContains(t, msg, "\n", "one line")
			for _, w := range append(tc.want, fmt.Sprintf("%s:%d", bad, line)) {
				assert.Contains(t, msg, w, "the proxy's own message, pointing into the user's file")
			}
			assert.NotContains(t, msg, dir, "not into poolproof's rendered copy")
			assert.Empty(t, proctest.LeftBehind(dir), "no process, listener or file is left")
		})
	}
}

func TestProxiesStopEveryProcessOnResetAndClose(t *testing.T) {
	for _, tc := range []struct {
		kind, file string
		procs      int // the main process and its workers
	}{
		{proxy.Nginx, shipped("nginx-keepalive.conf"), 1 + proxy.NginxWorkers},
		{proxy.HAProxy, shipped("haproxy.cfg"), 1},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			testenv.ProxyBinary(t, tc.kind)
			dir := tmpDir(t)
			ctx := harnesstest.Ctx(t)
			e, err := proxy.Open(ctx, proxy.Config{Kind: tc.kind, File: tc.file})
			require.NoError(t, err)
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = e.Close()
				}
			})

			// nginx's master forks its workers after it answers: wait for
			// them (bounded) before taking the inventory.
			var first []proctest.Process
			require.Eventually(t, func() bool { first = proctest.WorkingUnder(dir); return len(first) == tc.procs },
				10*time.Second, 20*time.Millisecond, "the proxy's processes: %v", first)
			before := ports(t, e)
			for _, p := range before {
				assert.True(t, proctest.Listening(p))
			}

			require.NoError(t, e.Reset(ctx, 7))
			var second []proctest.Process
			require.Eventually(t, func() bool { second = proctest.WorkingUnder(dir); return len(second) == tc.procs },
				10*time.Second, 20*time.Millisecond, "a fresh proxy: %v", second)
			for _, p := range first {
				_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(p.PID)))
				assert.True(t, errors.Is(err, os.ErrNotExist), "%d of the proxy before the reset is gone, not a zombie", p.PID)
			}

			after := ports(t, e)
			require.NoError(t, e.Close())
			closed = true
			assert.Empty(t, proctest.LeftBehind(dir, append(before, after...)...), "no process, listener or file is left")
			for _, p := range second {
				_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(p.PID)))
				assert.True(t, errors.Is(err, os.ErrNotExist), "%d was reaped", p.PID)
			}
		})
	}
}

func TestProxiesRecordEachReplicasTruth(t *testing.T) {
	e := open(t, proxy.Nginx, shipped("nginx-keepalive.conf"))
	ctx := harnesstest.Ctx(t)
	require.NoError(t, e.Reset(ctx, 3))
	spec := harness.RunSpec{Scenario: "through-nginx", Seed: 3, Profile: reference.Profile(),
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: 500 * time.Millisecond, Workers: 3, Mix: harness.Mix{Inventory: 1}}}
	h, err := harness.Run(ctx, e, reference.Factory, spec)
	require.NoError(t, err)

	assert.Equal(t, []string{"inventory-0", "inventory-1", "inventory-2"}, h.Replicas(fakeservers.Inventory))
	front := h.ServerAfterRun[fakeservers.Inventory]
	assert.False(t, front.Available, "the client's connections end at the proxy")
	assert.Contains(t, front.Err, "the server truth is its replicas'")
	served := 0
	for _, r := range h.Replicas(fakeservers.Inventory) {
		tr := h.ServerAfterRun[r]
		require.True(t, tr.Available, r)
		assert.NotEmpty(t, tr.Stats.Requests, "%s served its share", r)
		served += len(tr.Stats.Requests)
	}
	assert.GreaterOrEqual(t, served, len(h.Calls), "every call reached a replica through nginx")
	for _, v := range harness.Judge(h, check.NoHang{}, check.IntegrityDigest{}, check.ProxyErrors{}) {
		assert.True(t, v.Passed(), "%s", v)
	}
}

// certify runs the named proxy scenarios against the reference client
// through kind started from file.
func certify(t *testing.T, kind, file string, o scenarios.ProxyOptions, names ...string) *harness.Certificate {
	t.Helper()
	e := open(t, kind, file)
	var list []harness.Scenario
	for _, s := range scenarios.Proxy(o) {
		if len(names) == 0 || slicesContains(names, s.Name) {
			list = append(list, s)
		}
	}
	require.NotEmpty(t, list)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cert, err := harness.Certify(ctx, e, reference.Factory, reference.Profile(), list)
	require.NoError(t, err)
	for _, r := range cert.Results {
		var b strings.Builder
		for _, v := range r.Verdicts {
			fmt.Fprintf(&b, "\n    %s", v)
		}
		t.Logf("%s %s: %-24s %6.2fs calls=%d%s", kind, filepath.Base(file), r.Scenario, r.Elapsed.Seconds(), len(r.History.Calls), b.String())
	}
	return cert
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// verdict is the verdict of check in the scenario's result.
func verdict(t *testing.T, cert *harness.Certificate, scenario, id string) harness.Verdict {
	t.Helper()
	r, ok := cert.Result(scenario)
	require.True(t, ok, scenario)
	for _, v := range r.Verdicts {
		if v.Check == id {
			return v
		}
	}
	t.Fatalf("%s has no %s verdict", scenario, id)
	return harness.Verdict{}
}

// The classic nginx mistake and its fix give opposite verdicts, and the
// reasons explain the difference in upstream connections per 1000 requests.
func TestProxiesNginxConfigsGiveOppositeVerdicts(t *testing.T) {
	good := verdict(t, certify(t, proxy.Nginx, shipped("nginx-keepalive.conf"), scenarios.ProxyOptions{}, scenarios.UpstreamReuse),
		scenarios.UpstreamReuse, check.IDProxyUpstreamReuse)
	bad := verdict(t, certify(t, proxy.Nginx, shipped("nginx-no-http11.conf"), scenarios.ProxyOptions{}, scenarios.UpstreamReuse),
		scenarios.UpstreamReuse, check.IDProxyUpstreamReuse)
	t.Logf("upstream connections per 1000 requests: nginx-keepalive.conf %v, nginx-no-http11.conf %v", good.Measured, bad.Measured)

	assert.Equal(t, harness.StatusPass, good.Status, "%s", good)
	assert.LessOrEqual(t, good.Measured, 10.0)
	assert.Contains(t, good.Reason, "the proxy reuses its upstream connections")

	assert.Equal(t, harness.StatusFail, bad.Status, "%s", bad)
	assert.GreaterOrEqual(t, bad.Measured, 900.0, "a connection per request")
	assert.Contains(t, bad.Reason, "reached the replicas as HTTP/1.0", "the effect of the missing directive")
	assert.Contains(t, bad.Reason, "proxy_http_version 1.1")
	assert.Contains(t, bad.Reason, `proxy_set_header Connection ""`)
}
