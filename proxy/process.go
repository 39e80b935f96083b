package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one running proxy: its main process (nginx's master, or
// HAProxy) leads a process group of its own, so that a terminal's ^C
// reaches poolproof alone, which then stops the proxy in order, and a
// stop reaches every worker.
type process struct {
	kind string
	cmd  *exec.Cmd
	log  string // what the proxy printed, and nginx's error log

	done    chan struct{} // closed when the main process was reaped
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// startProcess runs binary with args in dir, its output into logPath.
func startProcess(kind, binary, dir, logPath string, args []string) (*process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	// The child keeps its own descriptor; ours closes once it started.
	defer out.Close()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// Should poolproof die without stopping it (SIGKILL, a crash), the
		// kernel kills the main process.
		Pdeathsig: syscall.SIGKILL,
		// nginx's workers outlive their master; in a PID namespace of its
		// own the master is the namespace's init, and when init dies the
		// kernel kills every process in it. Where a new namespace is not
		// allowed (no CAP_SYS_ADMIN), the proxy starts without one, and
		// only stop ends its workers.
		Cloneflags: syscall.CLONE_NEWPID,
	}
	if err := cmd.Start(); err != nil {
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSPC) {
			return nil, fmt.Errorf("%s: starting %s: %w", kind, binary, err)
		}
		retry := exec.Command(binary, args...)
		retry.Dir, retry.Stdout, retry.Stderr = dir, out, out
		retry.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := retry.Start(); err != nil {
			return nil, fmt.Errorf("%s: starting %s: %w", kind, binary, err)
		}
		cmd = retry
	}
	p := &process{kind: kind, cmd: cmd, log: logPath, done: make(chan struct{})}
	go p.reap()
	return p, nil
}

// reap waits for the main process; its name is in GoroutineIgnores.
func (p *process) reap() {
	p.waitErr = p.cmd.Wait()
	close(p.done)
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the main process ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output is what the proxy printed so far (bounded).
func (p *process) output() string {
	b, _ := os.ReadFile(p.log)
	const keep = 64 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// waitListening waits until every address accepts a connection, the
// process ends, or timeout passes.
func (p *process) waitListening(ctx context.Context, addrs []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	pending := append([]string(nil), addrs...)
	for {
		for len(pending) > 0 {
			var d net.Dialer
			dctx, dcancel := context.WithTimeout(ctx, 250*time.Millisecond)
			c, err := d.DialContext(dctx, "tcp", pending[0])
			dcancel()
			if err != nil {
				break
			}
			c.Close()
			pending = pending[1:]
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting (%v)", p.kind, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%s did not listen on %s within %v: %w", p.kind, pending[0], timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop ends the proxy and every process of its group within about
// 2 x grace: SIGTERM to the main process, which stops its workers and
// reaps them (nginx's fast shutdown, HAProxy's hard stop); if it does not
// end within grace, SIGKILL to its workers, then to it. Processes of the
// group left over (a worker whose master died) are killed too. Stopping
// twice is stopping once.
func (p *process) stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.stopNow(grace) })
	return p.stopErr
}

func (p *process) stopNow(grace time.Duration) error {
	pgid := p.pid()
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		// Workers first, so their master (still alive) reaps them.
		for _, pid := range groupMembers(pgid) {
			if pid != pgid {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(grace):
			return fmt.Errorf("%s (pid %d) did not end within %v of SIGKILL", p.kind, pgid, grace)
		}
	}
	deadline := time.Now().Add(grace)
	for {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return nil
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: processes %v of group %d still run %v after the stop", p.kind, left, pgid, grace)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers lists the live processes of process group pgid, from /proc
// (zombies are dead: they hold no socket and run nothing).
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, group, ok := procStat(pid)
		if ok && group == pgid && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// procStat reads a process's state and process group from /proc/<pid>/stat.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	g, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], g, true
}

// freeAddr finds a loopback address no one listens on now. Another process
// may take it before the proxy does; starting again with new addresses
// (see Environment) covers that.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
