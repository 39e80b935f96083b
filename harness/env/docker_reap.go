package env

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// DockerHostLabel carries the host name of the process that started a
// container or network, next to DockerLabel, so that reapOrphans judges
// only PIDs of its own host.
const DockerHostLabel = "poolproof.host"

// runLabels are the labels of everything one docker environment starts.
func runLabels(runID string) map[string]string {
	return map[string]string{DockerLabel: runID, DockerHostLabel: hostName()}
}

func hostName() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// reapOrphans removes what the docker environments of dead processes on
// this host left behind. A test binary killed with SIGKILL, or by go test's
// timeout, never runs Close, and with Ryuk off nothing else would remove its
// containers. A run is an orphan when the PID its RunID begins with (see
// newRunID) names no process. Runs of live processes, of this process, and
// of other hosts (another PID namespace sharing the daemon) are left alone,
// as are runs without the host label. It returns the runs it removed.
func reapOrphans(ctx context.Context, log io.Writer) ([]string, error) {
	filter := make(client.Filters).Add("label", DockerLabel).Add("label", DockerHostLabel+"="+hostName())
	var runs []string
	err := withDockerClient(ctx, func(c *testcontainers.DockerClient) error {
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
		if err != nil {
			return fmt.Errorf("listing containers: %w", err)
		}
		for _, ctr := range cs.Items {
			runs = append(runs, ctr.Labels[DockerLabel])
		}
		ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
		if err != nil {
			return fmt.Errorf("listing networks: %w", err)
		}
		for _, n := range ns.Items {
			runs = append(runs, n.Labels[DockerLabel])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("docker environment: looking for runs of dead processes: %w", err)
	}
	slices.Sort(runs)
	runs = slices.Compact(runs)
	var (
		reaped []string
		errs   []error
	)
	for _, run := range runs {
		pid, ok := runPID(run)
		if !ok || pid == os.Getpid() || processExists(pid) {
			continue
		}
		if err := removeLabeled(ctx, run); err != nil {
			errs = append(errs, err)
			continue
		}
		reaped = append(reaped, run)
		_, _ = fmt.Fprintf(log, "docker environment: removed the containers and network of run %s (process %d is gone)\n", run, pid)
	}
	return reaped, errors.Join(errs...)
}

// runPID is the PID a RunID begins with.
func runPID(runID string) (int, bool) {
	p, _, ok := strings.Cut(runID, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// processExists reports whether a process with this PID runs. A zombie
// (killed, not yet waited for by its parent) does not; Linux tells it by
// its state in /proc. Anything but a clear "no such process" or "zombie"
// counts as running, so a run is never reaped on a doubt.
func processExists(pid int) bool {
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// "pid (comm) S ...": the state follows the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			if st := stat[i+2]; st == 'Z' || st == 'X' {
				return false
			}
		}
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || !errors.Is(err, os.ErrProcessDone)
}
