package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/internal/proctest"
	"github.com/poolproof/poolproof/internal/testenv"
)

// The tests named TestCertifyProxy* need nginx and haproxy: CI sets
// POOLPROOF_REQUIRE_PROXIES=1 so that they fail, not skip, without them.

func shippedProxyConfig(name string) string { return filepath.Join("..", "..", "proxies", name) }

func TestCertifyProxyRejectsBadFlagsWithExitCode2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"config without a proxy", []string{"-proxy-config", "x.conf"}, "-proxy-config needs -proxy"},
		{"a proxy without its config", []string{"-proxy", "nginx"}, "-proxy nginx needs -proxy-config"},
		{"an unknown proxy", []string{"-proxy", "envoy", "-proxy-config", "x"}, `-proxy "envoy": use nginx or haproxy`},
		{"another environment", []string{"-proxy", "nginx", "-proxy-config", "x", "-env", "docker"}, "-env docker: -proxy runs its services as replicas on the embedded environment"},
		{"http2", []string{"-proxy", "nginx", "-proxy-config", "x", "-http2"}, "-http2: the proxy catalog runs on HTTP/1.1"},
		{"an unknown proxy scenario", []string{"-proxy", "nginx", "-proxy-config", "x", "-scenario", "baseline"}, `-scenario "baseline": no scenario or family of that name in the standard proxy profile`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := certify(t, tc.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}

// proxyTmp points the proxy's temporary folder into a folder of the test,
// where what it leaves behind can be found.
func proxyTmp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return dir
}

func TestCertifyProxyRejectedConfigIsOneLineExitTwoAndLeavesNothing(t *testing.T) {
	for _, tc := range []struct{ kind, shipped, good, bad, want string }{
		{"nginx", "nginx-keepalive.conf", "keepalive 32;", "keepalive thirty-two;", `nginx: [emerg] invalid value "thirty-two" in `},
		{"haproxy", "haproxy.cfg", "balance roundrobin", "balance sideways", "haproxy: [ALERT] "},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			testenv.ProxyBinary(t, tc.kind)
			b, err := os.ReadFile(shippedProxyConfig(tc.shipped))
			require.NoError(t, err)
			text := string(b)
			line := strings.Count(text[:strings.Index(text, tc.good)], "\n") + 1
			bad := filepath.Join(t.TempDir(), "site.conf")
			require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(text, tc.good, tc.bad, 1)), 0o600))
			dir := proxyTmp(t)

			code, stdout, stderr := certify(t, "-proxy", tc.kind, "-proxy-config", bad, "-report", "-")
			assert.Equal(t, 2, code, "stderr: %s", stderr)
			assert.Empty(t, stdout, "nothing runs")
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			assert.True(t, strings.HasPrefix(stderr, "poolproof certify: -proxy-config "+bad+": "+tc.kind+": "), stderr)
			assert.Contains(t, stderr, tc.want, "the proxy's own words")
			assert.Contains(t, stderr, bad+":"+strconv.Itoa(line), "pointing at the line in the user's file")
			assert.Empty(t, proctest.LeftBehind(dir), "no process or file is left")
		})
	}
}

// watchProxy records, until stop is called, the processes working in dir
// and the ports the proxy's rendered configuration listens on.
func watchProxy(t *testing.T, dir string) (stop func() (procs int, ports []int)) {
	t.Helper()
	listen := regexp.MustCompile(`(?:listen|bind) 127\.0\.0\.1:(\d+)`)
	done := make(chan struct{})
	var (
		mu    sync.Mutex
		seen  = map[int]bool{}
		found = map[int]bool{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			files, _ := filepath.Glob(filepath.Join(dir, "poolproof-*", "*.c*"))
			mu.Lock()
			for _, p := range proctest.WorkingUnder(dir) {
				seen[p.PID] = true
			}
			for _, f := range files {
				b, _ := os.ReadFile(f)
				for _, m := range listen.FindAllStringSubmatch(string(b), -1) {
					n, _ := strconv.Atoi(m[1])
					found[n] = true
				}
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int, []int) {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		var ports []int
		for p := range found {
			ports = append(ports, p)
		}
		return len(seen), ports
	}
}

func TestCertifyProxyPassAndFailLeaveNoProcessOrListener(t *testing.T) {
	for _, tc := range []struct {
		kind, config string
		code         int
		want         []string
	}{
		{"nginx", "nginx-keepalive.conf", 0, []string{"CERTIFIED: ", "the proxy reuses its upstream connections"}},
		{"nginx", "nginx-no-http11.conf", 1, []string{"NOT CERTIFIED: ", "proxy.upstream_reuse", "reached the replicas as HTTP/1.0"}},
		{"haproxy", "haproxy.cfg", 0, []string{"CERTIFIED: ", "the proxy reuses its upstream connections"}},
	} {
		t.Run(tc.config, func(t *testing.T) {
			testenv.ProxyBinary(t, tc.kind)
			dir := proxyTmp(t)
			stop := watchProxy(t, dir)
			code, stdout, stderr := certify(t, "-proxy", tc.kind, "-proxy-config", shippedProxyConfig(tc.config), "-scenario", "upstream-reuse", "-report", "-")
			procs, ports := stop()
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, w := range tc.want {
				assert.Contains(t, stdout, w)
			}
			assert.Contains(t, stderr, "poolproof: certifying "+tc.kind+" from ")
			assert.NotZero(t, procs, "the proxy was seen running")
			assert.Len(t, ports, 2, "it listened for inventory and payment")
			assert.Empty(t, proctest.LeftBehind(dir, ports...), "no process, listener or file is left")
		})
	}
}

// TestCertifyProxyBinaryStopsTheProxyOnSIGINT runs the real binary: the
// signal path (signal.NotifyContext in main) is only exercised in a
// separate process.
func TestCertifyProxyBinaryStopsTheProxyOnSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "poolproof")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	for _, kind := range []string{"nginx", "haproxy"} {
		t.Run(kind, func(t *testing.T) {
			testenv.ProxyBinary(t, kind)
			config := map[string]string{"nginx": "nginx-keepalive.conf", "haproxy": "haproxy.cfg"}[kind]
			dir := t.TempDir()

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "certify", "-proxy", kind, "-proxy-config", shippedProxyConfig(config), "-report", "-")
			cmd.Env = append(os.Environ(), "TMPDIR="+dir)
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			stop := watchProxy(t, dir)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "[2/") }, 45*time.Second, 20*time.Millisecond,
				"the second scenario started; stderr: %s", stderr.String())
			require.NotEmpty(t, proctest.WorkingUnder(dir), "the proxy runs")
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case <-waited:
			case <-time.After(30 * time.Second):
				t.Fatalf("poolproof did not stop within 30s of SIGINT; stderr: %s", stderr.String())
			}
			procs, ports := stop()
			assert.Equal(t, 1, cmd.ProcessState.ExitCode(), "an interrupted certification certifies nothing; stderr: %s", stderr.String())
			assert.Contains(t, stderr.String(), "interrupted")
			assert.NotZero(t, procs)
			assert.Len(t, ports, 2)
			assert.Empty(t, proctest.LeftBehind(dir, ports...), "no process, listener or file is left")
			assert.True(t, bytes.Contains([]byte(stdout.String()), []byte("partial results")), "the scorecard says what was done: %s", stdout.String())
		})
	}
}

// A configuration that fronts inventory alone cannot run the scenarios that
// call payment: they are skipped, and said so; with none left, exit 2.
func TestCertifyProxySkipsWhatTheConfigurationDoesNotFront(t *testing.T) {
	testenv.ProxyBinary(t, "nginx")
	conf := filepath.Join(t.TempDir(), "inventory-only.conf")
	require.NoError(t, os.WriteFile(conf, []byte(`upstream inventory { server {{inventory.each}}; keepalive 8; }
server { listen {{inventory.listen}}; location / { proxy_pass http://inventory; proxy_http_version 1.1; proxy_set_header Connection ""; } }
`), 0o600))
	dir := proxyTmp(t)
	code, stdout, stderr := certify(t, "-proxy", "nginx", "-proxy-config", conf, "-profile", "quick", "-report", "-")
	assert.Equal(t, 2, code, "stderr: %s", stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "poolproof: skipping upstream-reuse: it calls a service "+conf+" does not listen for (it listens for inventory)")
	assert.Contains(t, stderr, "no scenario to run: the proxy catalog calls inventory and payment")
	assert.Empty(t, proctest.LeftBehind(dir), "no process or file is left")
}
