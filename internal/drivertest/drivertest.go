// Package drivertest holds what the tests of drivers share: the Go driver
// built for a test, and the check that a test leaves no process
// behind (no child, no zombie, nothing of a driver's process group).
package drivertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// GoDriver builds drivers/go into the test's temporary folder and returns
// its path (a second or so with a warm build cache).
func GoDriver(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "go-driver")
	require.NoError(t, BuildGoDriver(bin))
	return bin
}

// BuildGoDriver builds drivers/go as bin, for a test whose driver path
// must be known before it runs (a Ginkgo suite declares its specs first).
func BuildGoDriver(bin string) error {
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	out, err := exec.Command(goCmd, "build", "-o", bin, "github.com/poolproof/poolproof/drivers/go").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building drivers/go: %w: %s", err, out)
	}
	return nil
}

// Process is one process of /proc.
type Process struct {
	PID, PPID, PGrp int
	State, Comm     string
}

// Processes lists the processes of /proc; the test is skipped where there
// is none.
func Processes(t testing.TB) []Process {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var out []Process
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		out = append(out, Process{PID: pid, PPID: ppid, PGrp: pgrp, State: f[0], Comm: s[open+1 : end]})
	}
	return out
}

// RequireNothingLeft fails the test when a child of this test process is
// still there, zombie or not, or (driverPID > 0) a process of that
// driver's group: the driver or anything it started.
func RequireNothingLeft(t testing.TB, driverPID int) {
	t.Helper()
	for _, p := range Processes(t) {
		if driverPID > 0 && (p.PGrp == driverPID || p.PID == driverPID) {
			t.Errorf("process %d (%s, state %s) of the driver's group %d is still there", p.PID, p.Comm, p.State, driverPID)
		}
		if p.PPID == os.Getpid() {
			t.Errorf("child %d (%s, state %s) of this test is still there", p.PID, p.Comm, p.State)
		}
	}
}
