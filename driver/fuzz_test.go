package driver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// FuzzDriverOutput feeds any bytes to the harness side as a driver's
// stdout: its first line answers init, the rest arrives while three calls
// are pending. Whatever the bytes, nothing panics, every call returns, the
// session ends, and a protocol error about a line quotes that line as the
// driver printed it.
func FuzzDriverOutput(f *testing.F) {
	ok := `{"type":"init_ok","driver":"d","library":"l","version":"1"}` + "\n"
	res := func(id string) string {
		return `{"type":"result","id":` + id + `,"status":200,"headers":{"X-Body-Digest":["sha256=00"]},"body_len":0,"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}` + "\n"
	}
	for _, seed := range []string{
		ok + res("1") + res("2") + res("3"),
		ok + res("3") + `{"type":"result","id":2,"error":{"class":"timeout","message":"read timed out"}}` + "\n" + res("1"),
		ok + "hello\n",
		ok + res("1001"),
		ok + res("1") + res("1"),
		ok + `{"type":"close_ok"}` + "\n",
		ok + ok,
		ok + `{"type":"result","id":1,"status":200}` + "\n",
		ok + `{"type":"result","id":1,"error":{"class":"boom"}}` + "\n",
		ok + `{"type":"result","id":1.5}` + "\n",
		ok + `{"type":"result","id":1,"status":200,"headers":{"A":7},"body_len":0,"body_sha256":""}` + "\n",
		ok + "\n\n  \r\n" + res("2"),
		ok + `{"type":"result","id":1,"sta`,
		res("1"),
		"",
		"\x00\xff\xfe{\n",
		`{"type":"init_ok"}`,
		ok + strings.Repeat("x", 70000) + "\n",
		ok + `null` + "\n",
		ok + `{"type":"result","id":-1,"status":200,"body_len":0,"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}` + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		p := newProcess("fuzz-driver", newOptions([]Option{WithInitTimeout(time.Second), WithCloseTimeout(time.Second)}))
		close(p.exited) // no OS process: its exit is the end of its output
		init, err := p.prepare([]harness.Service{{Name: "inventory", BaseURL: "http://127.0.0.1:1"}}, harness.DefaultProfile())
		if err != nil {
			t.Fatal(err)
		}
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		drained := make(chan struct{})
		go func() { defer close(drained); _, _ = io.Copy(io.Discard, inR) }()

		first, rest := splitFirstLine(out)
		registered := make(chan struct{})
		written := make(chan struct{})
		go func() {
			defer close(written)
			defer outW.Close()
			if _, err := outW.Write(first); err != nil || len(rest) == 0 {
				return
			}
			<-registered
			_, _ = outW.Write(rest)
		}()
		p.run(inW, outR)

		var (
			calls sync.WaitGroup
			resps []*http.Response
			mu    sync.Mutex
		)
		if p.handshake(context.Background(), init) == nil {
			for i := range 3 {
				calls.Go(func() {
					req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/v1/items/"+strconv.Itoa(i), nil)
					resp, err := p.Do(req)
					if err == nil {
						mu.Lock()
						resps = append(resps, resp)
						mu.Unlock()
					}
				})
			}
			waitPending(p, 3)
		}
		close(registered)

		allReturned := make(chan struct{})
		go func() { calls.Wait(); close(allReturned) }()
		select {
		case <-allReturned:
		case <-time.After(10 * time.Second):
			t.Fatalf("a call never returned after the driver's output ended (%q)", out)
		}
		// The calls may all be answered before the reader meets the end of
		// the output: the session ends then, not when the last call returns.
		select {
		case <-p.ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("the session did not end at the end of the driver's output (%q)", out)
		}
		for _, r := range resps {
			if r.StatusCode < 100 || r.StatusCode > 599 {
				t.Fatalf("a response with status %d came through", r.StatusCode)
			}
		}
		var perr *ProtocolError
		if errors.As(p.Err(), &perr) {
			if (errors.Is(perr, ErrBadMessage) || errors.Is(perr, ErrUnknownCall)) && perr.Line == "" {
				t.Fatalf("%v: the error names no line", perr)
			}
			if perr.Line != "" && (!bytes.Contains(out, []byte(perr.Line)) || !strings.Contains(perr.Error(), strconv.Quote(perr.Line))) {
				t.Fatalf("%v: the line it quotes (%q) is not what the driver printed", perr, perr.Line)
			}
		}
		_ = p.Close()
		<-written
		<-drained
	})
}

// splitFirstLine splits after the first line that is not blank.
func splitFirstLine(b []byte) ([]byte, []byte) {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b, nil
		}
		if len(bytes.TrimSpace(b[i:i+j])) > 0 {
			return b[:i+j+1], b[i+j+1:]
		}
		i += j + 1
	}
	return b, nil
}

// waitPending waits (bounded) until n calls are pending or the session
// ended.
func waitPending(p *Process, n int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && p.Err() == nil {
		p.mu.Lock()
		k := len(p.pending)
		p.mu.Unlock()
		if k >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
