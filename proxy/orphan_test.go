package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/internal/proctest"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/proxy"
)

// The test binary run with orphanKindEnv set is a stand-in for a poolproof
// process: it starts a proxy, says "ready" and waits to be killed.
const (
	orphanKindEnv = "POOLPROOF_TEST_ORPHAN_PROXY_KIND"
	orphanFileEnv = "POOLPROOF_TEST_ORPHAN_PROXY_FILE"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(orphanKindEnv); kind != "" {
		os.Exit(startProxyAndWait(kind, os.Getenv(orphanFileEnv)))
	}
	os.Exit(m.Run())
}

func startProxyAndWait(kind, file string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := proxy.Open(ctx, proxy.Config{Kind: kind, File: file})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer e.Close()
	fmt.Println("ready")
	time.Sleep(2 * time.Minute) // the test kills this process long before
	return 0
}

// A poolproof process killed with SIGKILL cannot stop its proxy: the
// kernel then kills every process of it (nginx's workers as well as its
// master), because the proxy runs as the init of a PID namespace of its
// own. Creating one needs root (CAP_SYS_ADMIN), as in CI.
func TestProxiesDieWithPoolproof(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a PID namespace of its own needs root; without one, only a stop ends nginx's workers")
	}
	for _, tc := range []struct {
		kind, file string
		procs      int
	}{
		{proxy.Nginx, shipped("nginx-keepalive.conf"), 1 + proxy.NginxWorkers},
		{proxy.HAProxy, shipped("haproxy.cfg"), 1},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			testenv.ProxyBinary(t, tc.kind)
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), orphanKindEnv+"="+tc.kind, orphanFileEnv+"="+tc.file, "TMPDIR="+dir)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			killed := false
			t.Cleanup(func() {
				if !killed {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
				for _, p := range proctest.WorkingUnder(dir) { // whatever a failure left
					_ = syscall.Kill(p.PID, syscall.SIGKILL)
				}
			})

			line := make(chan string, 1)
			go func() {
				s, _ := bufio.NewReader(out).ReadString('\n')
				line <- strings.TrimSpace(s)
			}()
			select {
			case got := <-line:
				require.Equal(t, "ready", got)
			case <-time.After(45 * time.Second):
				t.Fatal("the stand-in poolproof did not start its proxy within 45s")
			}
			var running []proctest.Process
			require.Eventually(t, func() bool { running = proctest.WorkingUnder(dir); return len(running) == tc.procs },
				10*time.Second, 20*time.Millisecond, "the proxy's processes: %v", running)

			require.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait()
			killed = true
			assert.Eventually(t, func() bool { running = proctest.WorkingUnder(dir); return len(running) == 0 },
				10*time.Second, 20*time.Millisecond, "processes of the proxy outlived poolproof: %v", running)
		})
	}
}
