package driver

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/poolproof/poolproof/harness"
)

// sysProcAttr puts the driver in a process group of its own, so that the
// whole group (the driver and whatever it starts) is killed at once and a
// terminal's Ctrl-C reaches only poolproof, which then closes it; and has
// the kernel kill the driver if poolproof dies without closing it (kill
// -9), as no deferred Close runs then.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group of pid (the driver's, see
// sysProcAttr); a group already gone is fine.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// groupGone reports that no process of pid's group is left, zombies
// included (a zombie still counts until its parent reaps it).
func groupGone(pid int) bool {
	return pid <= 0 || syscall.Kill(-pid, 0) == syscall.ESRCH
}

// processCounts reads the open file descriptors, the sockets among them
// and the threads of pid from /proc.
func processCounts(pid int) (harness.ProcessCounts, error) {
	var c harness.ProcessCounts
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return c, fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed while we looked
		}
		c.FDs++
		if strings.HasPrefix(target, "socket:") {
			c.Sockets++
		}
	}
	status := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(status)
	if err != nil {
		return c, fmt.Errorf("reading %s: %w", status, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			if c.Threads, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return c, fmt.Errorf("%s: Threads: %w", status, err)
			}
			return c, nil
		}
	}
	return c, fmt.Errorf("%s: no Threads line", status)
}
