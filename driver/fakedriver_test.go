package driver_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary is also the drivers the tests start: with envFakeDriver
// set it runs fakeDriver in that mode instead of the tests. Each mode
// misbehaves in one way a real driver might.
const envFakeDriver = "POOLPROOF_FAKE_DRIVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envFakeDriver); mode != "" {
		os.Exit(fakeDriver(mode))
	}
	os.Exit(m.Run())
}

// fakeCmd is the command line of the fake driver in mode.
func fakeCmd(mode string) ([]string, []string) {
	return []string{os.Args[0], "-test.run=^$"}, []string{envFakeDriver + "=" + mode}
}

var emptySHA256 = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// fakeDriver speaks the protocol without any HTTP: every call is answered
// 200 with an empty body, and the first of them carries the call's
// X-Request-ID back so tests see headers pass both ways. Modes:
//
//	ok            keeps to the protocol
//	crash         answers 2 calls, then writes to stderr and exits 3
//	grandchild    starts a sleeping child in its group, then crashes
//	hang          answers init, then nothing (calls, close, shutdown, EOF)
//	garbage       answers the first call with a line that is not JSON
//	unknown-id    answers the first call with another id
//	duplicate-id  answers the first call twice
//	no-init       never answers init
//	exit-at-init  writes an import error to stderr and exits 1
//	slow-exit     keeps to the protocol but ignores shutdown and EOF
//	leak-fds      keeps to the protocol but opens a file per call, never closed
//	sleeper       (a grandchild) sleeps
func fakeDriver(mode string) int {
	if mode == "sleeper" {
		time.Sleep(time.Hour)
		return 0
	}
	var (
		outMu  sync.Mutex
		out    = bufio.NewWriter(os.Stdout)
		calls  int
		leaked []*os.File
	)
	send := func(line string) {
		outMu.Lock()
		defer outMu.Unlock()
		out.WriteString(line + "\n")
		out.Flush()
	}
	hangForever := func() int { time.Sleep(time.Hour); return 0 }
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var m struct {
			Type    string              `json:"type"`
			ID      int64               `json:"id"`
			Headers map[string][]string `json:"headers"`
		}
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			fmt.Fprintln(os.Stderr, "fake driver: bad line:", err)
			return 2
		}
		switch m.Type {
		case "init":
			switch mode {
			case "no-init":
				return hangForever()
			case "exit-at-init":
				fmt.Fprintln(os.Stderr, "Traceback (most recent call last):\nModuleNotFoundError: No module named 'requests'")
				return 1
			case "grandchild":
				c := exec.Command(os.Args[0], "-test.run=^$")
				c.Env = append(os.Environ(), envFakeDriver+"=sleeper")
				if err := c.Start(); err != nil {
					fmt.Fprintln(os.Stderr, "fake driver:", err)
					return 2
				}
				fmt.Fprintln(os.Stderr, "grandchild", c.Process.Pid)
			}
			send(`{"type":"init_ok","driver":"fake-` + mode + `","library":"none","version":"0"}`)
		case "call":
			calls++
			if mode == "leak-fds" {
				f, err := os.Open(os.DevNull)
				if err == nil {
					leaked = append(leaked, f)
				}
			}
			if (mode == "crash" || mode == "grandchild") && calls > 2 {
				fmt.Fprintln(os.Stderr, "panic: simulated crash after 2 calls")
				os.Exit(3)
			}
			if mode == "hang" {
				continue
			}
			id := m.ID
			switch {
			case mode == "garbage":
				send("hello from the driver")
				continue
			case mode == "unknown-id":
				id += 1000
			}
			rid, _ := json.Marshal(m.Headers["X-Request-Id"])
			line := `{"type":"result","id":` + strconv.FormatInt(id, 10) + `,"status":200,"headers":{"x-echo-request-id":` + string(rid) + `},"body_len":0,"body_sha256":"` + emptySHA256 + `"}`
			send(line)
			if mode == "duplicate-id" {
				send(line)
			}
		case "close":
			if mode == "hang" {
				continue
			}
			send(`{"type":"close_ok"}`)
		case "shutdown":
			if mode == "hang" || mode == "slow-exit" {
				return hangForever()
			}
			return 0
		}
	}
	if mode == "hang" || mode == "slow-exit" || mode == "no-init" {
		return hangForever()
	}
	_ = leaked
	return 0
}

// openPipes counts this process's open pipe ends.
func openPipes(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}
