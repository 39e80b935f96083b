//go:build unix && !linux

package driver

import (
	"errors"
	"syscall"

	"github.com/poolproof/poolproof/harness"
)

// sysProcAttr puts the driver in a process group of its own, so that the
// whole group is killed at once (no parent-death signal outside Linux).
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group of pid; a group already gone is fine.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// groupGone reports that no process of pid's group is left.
func groupGone(pid int) bool {
	return pid <= 0 || syscall.Kill(-pid, 0) == syscall.ESRCH
}

// processCounts needs /proc, which only Linux has: the leak check is then
// not applicable.
func processCounts(int) (harness.ProcessCounts, error) {
	return harness.ProcessCounts{}, errors.New("no /proc on this system: a driver's descriptors and threads cannot be counted")
}
