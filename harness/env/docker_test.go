package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/harnesstest"
	"github.com/poolproof/poolproof/internal/testenv"
)

// requireDockerEnv starts a docker environment owned by the test. Without a
// daemon it skips, unless POOLPROOF_REQUIRE_DOCKER=1 says the machine must
// have one (CI), where it fails.
func requireDockerEnv(t *testing.T, opts ...Option) *Docker {
	t.Helper()
	if testing.Short() {
		t.Skip("docker environment: skipped in -short mode (builds images and starts containers)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DockerStartTimeout)
	defer cancel()
	env, err := NewDocker(ctx, opts...)
	skipOrFailWithoutDocker(t, err)
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Close() })
	return env
}

// skipOrFailWithoutDocker skips the test when err says Docker is
// unavailable, or fails it when POOLPROOF_REQUIRE_DOCKER=1.
func skipOrFailWithoutDocker(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrDockerUnavailable) {
		return
	}
	testenv.Unavailable(t, testenv.RequireDocker, "Docker", "start the Docker daemon", err)
}

// dockerLeftovers lists, through the docker CLI (not the code under test),
// the containers and networks labelled with runID.
func dockerLeftovers(t *testing.T, runID string) (containers, networks string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	filter := "label=" + DockerLabel + "=" + runID
	ps, err := exec.CommandContext(ctx, "docker", "ps", "-a", "-q", "--filter", filter).CombinedOutput()
	require.NoError(t, err, "docker ps: %s", ps)
	ns, err := exec.CommandContext(ctx, "docker", "network", "ls", "-q", "--filter", filter).CombinedOutput()
	require.NoError(t, err, "docker network ls: %s", ns)
	return strings.TrimSpace(string(ps)), strings.TrimSpace(string(ns))
}

func TestDockerRunsABaselineAndFaultsAndLeavesNothing(t *testing.T) {
	start := time.Now()
	env := requireDockerEnv(t)
	t.Logf("NewDocker took %v", time.Since(start))
	runID := env.RunID()
	ps, ns := dockerLeftovers(t, runID)
	require.NotEmpty(t, ps, "the run's containers carry the label %s=%s", DockerLabel, runID)
	require.NotEmpty(t, ns, "the run's network carries the label")
	require.Len(t, env.Services(), len(fakeservers.Services))

	runStart := time.Now()
	h, err := harness.Run(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, harnesstest.ShortSpec("docker-baseline", 3))
	require.NoError(t, err)
	t.Logf("a %v run took %v", harnesstest.ShortSpec("", 0).Workload.Duration, time.Since(runStart))
	require.NotEmpty(t, h.Calls)
	for _, c := range h.Calls {
		require.True(t, c.OK(), "call %d %v: class %v status %d err %q", c.Seq, c.Op, c.Class, c.Status, h.ErrorText(c))
	}
	for _, name := range h.Services {
		require.True(t, h.ServerAfterRun[name].Available, "server truth of %s: %s", name, h.ServerAfterRun[name].Err)
	}
	for _, v := range harness.Judge(h, append(check.Leaks(), check.NoHang{})...) {
		assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
	}

	// One plain *http.Client trusting Service.CAs sees a latency toxic and
	// an HTTP fault applied through the same FaultDriver.
	require.NoError(t, env.Reset(harnesstest.Ctx(t), harness.DefaultSeed))
	inv := serviceNamed(t, env.Services(), fakeservers.Inventory)
	tr := harnesstest.StdTransport(inv, 4)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	get := func() (int, time.Duration) {
		t.Helper()
		begin := time.Now()
		resp, err := client.Get(inv.BaseURL + "/v1/items/SKU-1")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(begin)
	}
	status, _ := get() // warm the connection: the toxic then adds to one round trip
	require.Equal(t, http.StatusOK, status)

	const added = 400 * time.Millisecond
	ctx := harnesstest.Ctx(t)
	require.NoError(t, env.Faults().Apply(ctx, harness.AddToxic(fakeservers.Inventory, harness.Latency("slow", harness.Downstream, added, 0))))
	status, took := get()
	assert.Equal(t, http.StatusOK, status)
	assert.GreaterOrEqual(t, took, added*3/4, "the latency toxic delays the response")
	require.NoError(t, env.Faults().Apply(ctx, harness.RemoveToxic(fakeservers.Inventory, "slow")))

	require.NoError(t, env.Faults().Apply(ctx, harness.SetHTTPFaults(fakeservers.Inventory, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: http.StatusServiceUnavailable})))
	status, _ = get()
	assert.Equal(t, http.StatusServiceUnavailable, status, "the HTTP fault reaches the client through the proxy")
	require.NoError(t, env.Faults().Apply(ctx, harness.ClearHTTPFaults(fakeservers.Inventory)))
	status, _ = get()
	assert.Equal(t, http.StatusOK, status)
	tr.CloseIdleConnections()

	closeStart := time.Now()
	require.NoError(t, env.Close())
	t.Logf("Close took %v", time.Since(closeStart))
	require.NoError(t, env.Close(), "Close is idempotent")
	ps, ns = dockerLeftovers(t, runID)
	assert.Empty(t, ps, "no container of run %s is left", runID)
	assert.Empty(t, ns, "no network of run %s is left", runID)
}

func TestNewDockerCanceledHalfwayLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("docker environment: skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DockerStartTimeout)
	defer cancel()
	var (
		mu    sync.Mutex
		runID string
	)
	env, err := NewDocker(ctx, withAfterStart(func(id, _ string) {
		mu.Lock()
		runID = id
		mu.Unlock()
		cancel() // the first container is up, the others may be starting
	}))
	skipOrFailWithoutDocker(t, err)
	if env != nil {
		_ = env.Close()
	}
	require.Error(t, err)
	require.Nil(t, env)
	assert.ErrorIs(t, err, context.Canceled)
	mu.Lock()
	id := runID
	mu.Unlock()
	require.NotEmpty(t, id, "a container was started before the cancel")
	ps, ns := dockerLeftovers(t, id)
	assert.Empty(t, ps, "no container of run %s is left", id)
	assert.Empty(t, ns, "no network of run %s is left", id)
}

func serviceNamed(t *testing.T, svcs []harness.Service, name string) harness.Service {
	t.Helper()
	for _, s := range svcs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q in %v", name, svcs)
	return harness.Service{}
}

// A process killed without Close (SIGKILL) leaves its containers and
// network; the next NewDocker on the host removes them, and leaves alone
// what a live process, or another host, started.
func TestNewDockerReapsRunsOfDeadProcesses(t *testing.T) {
	env := requireDockerEnv(t) // builds the images the orphan is made of
	image := env.images.fakeserver

	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	deadPID := gone.Process.Pid
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	orphan := strconv.Itoa(deadPID) + "-" + stamp
	live := strconv.Itoa(os.Getppid()) + "-" + stamp // go test's own process: alive
	elsewhere := strconv.Itoa(deadPID) + "-" + stamp + "x"

	docker := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		require.NoError(t, err, "docker %v: %s", args, out)
	}
	leave := func(run, host string) {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = removeLabeled(ctx, run)
		})
		labels := []string{"--label", DockerLabel + "=" + run, "--label", DockerHostLabel + "=" + host}
		docker(append(append([]string{"network", "create"}, labels...), "pp-reap-"+run)...)
		docker(append(append([]string{"create"}, labels...), "--network", "pp-reap-"+run, image)...)
	}
	leave(orphan, hostName())
	leave(live, hostName())
	leave(elsewhere, "another-host")

	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reaped, err := reapOrphans(ctx, &log)
	require.NoError(t, err)
	assert.NotContains(t, reaped, live)
	assert.NotContains(t, reaped, elsewhere)
	// Another test process starting a docker environment at this moment
	// may reap the orphan first; either way it must be gone.
	if slices.Contains(reaped, orphan) {
		assert.Contains(t, log.String(), fmt.Sprintf("run %s (process %d is gone)", orphan, deadPID))
	}

	ps, ns := dockerLeftovers(t, orphan)
	assert.Empty(t, ps, "the dead process's container is removed")
	assert.Empty(t, ns, "the dead process's network is removed")
	for _, run := range []string{live, elsewhere} {
		ps, ns := dockerLeftovers(t, run)
		assert.NotEmpty(t, ps, "run %s is not an orphan", run)
		assert.NotEmpty(t, ns, "run %s is not an orphan", run)
	}
	ps, _ = dockerLeftovers(t, env.RunID())
	assert.NotEmpty(t, ps, "this process's own environment is untouched")
}
