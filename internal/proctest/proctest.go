// Package proctest reads, from /proc, what processes a test started left
// behind: the processes working in a folder (a proxy poolproof started runs
// in a temporary folder of its own, and its workers inherit it) and the
// loopback ports something listens on. Linux only: elsewhere it finds
// nothing.
package proctest

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is a live process found in /proc.
type Process struct {
	PID     int
	Cmdline string
	Dir     string // its working directory
}

// WorkingUnder lists the live processes (zombies excluded: they run
// nothing and hold no socket) whose working directory is dir or below it,
// deleted or not.
func WorkingUnder(dir string) []Process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		base := filepath.Join("/proc", e.Name())
		cwd, err := os.Readlink(filepath.Join(base, "cwd"))
		if err != nil {
			continue
		}
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		if cwd != dir && !strings.HasPrefix(cwd, dir+"/") {
			continue
		}
		if zombie(base) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(base, "cmdline"))
		out = append(out, Process{PID: pid, Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")), Dir: cwd})
	}
	return out
}

func zombie(base string) bool {
	b, err := os.ReadFile(filepath.Join(base, "stat"))
	if err != nil {
		return true // gone meanwhile
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// Listening reports whether a TCP socket on this machine listens on port
// (any address, IPv4 or IPv6).
func Listening(port int) bool {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if listeningIn(f, port) {
			return true
		}
	}
	return false
}

func listeningIn(path string, port int) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; st 0A is LISTEN.
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil && int(p) == port {
			return true
		}
	}
	return false
}

// LeftBehind describes what a stopped proxy that ran in dir left: live
// processes working there, listeners on its ports, files in dir. Empty
// when nothing is left.
func LeftBehind(dir string, ports ...int) []string {
	var out []string
	for _, p := range WorkingUnder(dir) {
		out = append(out, "process "+strconv.Itoa(p.PID)+" ("+p.Cmdline+") in "+p.Dir)
	}
	for _, port := range ports {
		if Listening(port) {
			out = append(out, "a listener on port "+strconv.Itoa(port))
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		out = append(out, "file "+filepath.Join(dir, e.Name()))
	}
	return out
}
