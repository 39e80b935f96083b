package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/fakeservers"
)

func TestMain(m *testing.M) {
	// Ginkgo's interrupt handler, started by the replay test's RunSpecs,
	// lives as long as the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}

// syncBuffer is written by the command's goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// keyValues parses the key=value lines fakeserver prints.
func keyValues(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func TestFakeserverServesUntilCanceled(t *testing.T) {
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"fakeserver", "-service", "inventory", "-tls", "on", "-seed", "7", "-latency", "1ms", "-ca-out", caPath}, &stdout, &stderr)
	}()
	if !assert.Eventually(t, func() bool { return keyValues(stdout.String())["admin_url"] != "" }, 10*time.Second, 5*time.Millisecond, "addresses printed") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	kv := keyValues(stdout.String())
	assert.Equal(t, "inventory", kv["service"])
	assert.Equal(t, caPath, kv["ca"])
	require.True(t, strings.HasPrefix(kv["url"], "https://127.0.0.1:"), kv["url"])

	pemBytes, err := os.ReadFile(caPath)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pemBytes))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(kv["url"] + "/v1/items/SKU-1")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.True(t, fakeservers.VerifyDigest(resp.Header.Get(fakeservers.HeaderBodyDigest), body))

	adm := fakeservers.NewAdminClient(kv["admin_url"])
	t.Cleanup(adm.Close)
	adminPEM, err := adm.CAPEM(ctx)
	require.NoError(t, err)
	assert.Equal(t, pemBytes, adminPEM, "-ca-out wrote the CA the admin API serves")
	tr.CloseIdleConnections()
	adm.Close()

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, "stderr: %s", stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("fakeserver did not stop within 10s of cancel")
	}
	for _, u := range []string{kv["url"], kv["admin_url"]} {
		_, err := net.DialTimeout("tcp", u[strings.Index(u, "//")+2:], time.Second)
		assert.Error(t, err, "%s is closed", u)
	}
}

func TestFakeserverRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown service", []string{"-service", "billing"}, `-service: "billing" is not one of payment, inventory, notification`},
		{"bad duration", []string{"-latency", "soon"}, `invalid value "soon" for flag -latency`},
		{"bad on/off", []string{"-tls=maybe"}, `want on or off, got "maybe"`},
		{"unknown flag", []string{"-colour"}, "flag provided but not defined: -colour"},
		{"negative jitter", []string{"-jitter", "-1s"}, "-jitter: must not be negative"},
		{"h2c with tls", []string{"-h2c"}, "-h2c:"},
		{"tls without a value", []string{"-tls"}, "flag needs an argument: -tls"},
		{"negative max requests", []string{"-max-requests-per-conn", "-1"}, "-max-requests-per-conn: must not be negative"},
		{"ca-out without tls", []string{"-tls=off", "-ca-out", "x.pem"}, "-ca-out and -ca-key-out need -tls=on"},
		{"stray argument", []string{"payment"}, `unexpected argument "payment"`},
		{"half a CA", []string{"-ca-cert", "x.pem"}, "-ca-cert and -ca-key go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			code := dispatch(context.Background(), append([]string{"fakeserver"}, tt.args...), &stdout, &stderr)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout.String())
			msg := stderr.String()
			assert.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
			assert.True(t, strings.HasPrefix(msg, "poolproof fakeserver: "), msg)
			assert.Contains(t, msg, tt.want)
		})
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no command", nil, 2, "", "usage: poolproof <command>"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"; known commands: `},
		{"help", []string{"help"}, 0, "fakeserver", ""},
		{"command help", []string{"fakeserver", "-h"}, 0, "-service", ""},
		{"help <command>", []string{"help", "judge"}, 0, "-rewrite", ""},
		{"help <unknown>", []string{"help", "frobnicate"}, 2, "", `poolproof help: unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, "poolproof ", ""},
		{"--version", []string{"--version"}, 0, "poolproof ", ""},
		{"version with an argument", []string{"version", "x"}, 2, "", "version takes none"},
		{"list scenarios", []string{"list", "scenarios"}, 0, "blackhole", ""},
		{"list checks", []string{"list", "checks"}, 0, "ledger.no_duplicate_charge", ""},
		{"list families", []string{"list", "families"}, 0, "breaker", ""},
		{"list clients", []string{"list", "clients"}, 0, "retries-unsafe-post", ""},
		{"list quick scenarios", []string{"list", "-profile", "quick", "scenarios"}, 0, "SCENARIO (quick)", ""},
		{"list something else", []string{"list", "toxics"}, 2, "", `"toxics": list one of scenarios, families, checks, clients`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			assert.Equal(t, tt.code, dispatch(context.Background(), tt.args, &stdout, &stderr))
			if tt.stdout != "" {
				assert.Contains(t, stdout.String(), tt.stdout)
			}
			if tt.stderr != "" {
				assert.Contains(t, stderr.String(), tt.stderr)
			}
		})
	}
}

// TestFakeserverBinaryStopsOnSIGINT runs the real binary: the signal path
// (signal.NotifyContext in main) is only exercised in a separate process.
func TestFakeserverBinaryStopsOnSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "poolproof")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t.Cleanup(cancel)
			cmd := exec.CommandContext(ctx, bin, "fakeserver", "-service", "payment", "-tls=off")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			lines := make(chan string, 8)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			kv := map[string]string{}
			for kv["admin_url"] == "" {
				select {
				case l, ok := <-lines:
					require.True(t, ok, "stdout ended early; stderr: %s", stderr.String())
					if k, v, ok := strings.Cut(l, "="); ok {
						kv[k] = v
					}
				case <-ctx.Done():
					t.Fatalf("no addresses printed; stderr: %s", stderr.String())
				}
			}
			resp, err := http.Get(kv["admin_url"] + fakeservers.AdminHealthPath)
			require.NoError(t, err)
			resp.Body.Close()
			http.DefaultClient.CloseIdleConnections()
			assert.Equal(t, 200, resp.StatusCode)

			require.NoError(t, cmd.Process.Signal(sig))
			for range lines {
			}
			err = cmd.Wait()
			require.NoError(t, err, "exit 0 on %s; stderr: %s", sig, stderr.String())
			assert.Equal(t, 0, cmd.ProcessState.ExitCode())
			_, err = net.DialTimeout("tcp", strings.TrimPrefix(kv["url"], "http://"), time.Second)
			assert.Error(t, err, "service listener closed")
		})
	}
}
