package driver_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/drivertest"
)

// fakeServices are addresses nothing listens on: the fake driver makes no
// HTTP call.
var fakeServices = []harness.Service{
	{Name: "inventory", BaseURL: "http://127.0.0.1:1"},
	{Name: "payment", BaseURL: "http://127.0.0.1:2"},
}

// startFake starts the fake driver in mode. The bounds a misbehaving mode
// runs into are shortened by the test itself (short), the others left
// long: a race-instrumented driver takes its time to exit.
func startFake(t testing.TB, mode string, opts ...driver.Option) (*driver.Process, error) {
	t.Helper()
	cmd, env := fakeCmd(mode)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := []driver.Option{driver.WithEnv(env...), driver.WithInitTimeout(10 * time.Second),
		driver.WithCloseTimeout(10 * time.Second), driver.WithExitTimeout(10 * time.Second)}
	return driver.Start(ctx, cmd, fakeServices, harness.DefaultProfile(), append(base, opts...)...)
}

// short are the bounds a misbehaving driver runs into.
var short = []driver.Option{driver.WithCloseTimeout(300 * time.Millisecond), driver.WithExitTimeout(300 * time.Millisecond)}

func get(t testing.TB, p *driver.Process, n int) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:1/v1/items/%d", n), nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-ID", fmt.Sprintf("req-%d", n))
	return p.Do(req)
}

// checkClean holds a finished test to the promise of Close: no process of
// the driver's group, no child of this test, zombie or not, no pipe left
// open, no goroutine of the session left running.
func checkClean(t *testing.T, pid, pipesBefore int) {
	t.Helper()
	drivertest.RequireNothingLeft(t, pid)
	assert.Equal(t, pipesBefore, openPipes(t), "every pipe to the driver is closed")
	goleak.VerifyNone(t)
}

func TestDriverThatKeepsToTheProtocol(t *testing.T) {
	pipes := openPipes(t)
	p, err := startFake(t, "ok")
	require.NoError(t, err)
	assert.Equal(t, driver.Info{Driver: "fake-ok", Library: "none", Version: "0"}, p.Info())

	before := p.ProcessLeaks()
	require.True(t, before.Measured, before.Err)
	assert.Positive(t, before.Before.FDs)
	assert.Positive(t, before.Before.Threads)
	assert.Equal(t, "fake-ok (none 0)", before.Client)

	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			resp, err := get(t, p, i)
			if !assert.NoError(t, err) {
				return
			}
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, []string{fmt.Sprintf("req-%d", i)}, resp.Header["X-Echo-Request-Id"], "headers reach the driver and come back canonical")
			rb, ok := resp.Body.(harness.ReportedBody)
			require.True(t, ok, "the body is reported, not transferred")
			assert.Equal(t, harness.BodyReport{Len: 0, SHA256: sha256.Sum256(nil)}, rb.BodyReport())
			b, err := io.ReadAll(resp.Body)
			assert.NoError(t, err)
			assert.Empty(t, b)
			assert.NoError(t, resp.Body.Close())
		})
	}
	wg.Wait()

	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/elsewhere", nil)
	require.NoError(t, err)
	_, err = p.Do(req)
	assert.ErrorContains(t, err, "http://127.0.0.1:9 is not the base URL of a service the driver was started with")

	p.CloseIdleConnections()
	require.NoError(t, p.Err())
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close twice is fine")
	_, err = get(t, p, 100)
	assert.ErrorIs(t, err, driver.ErrClosed)
	checkClean(t, p.PID(), pipes)
}

// TestDriverThatBreaksTheProtocol: each way a driver can misbehave ends it
// with a protocol error that names what it did (and the line it printed),
// that every pending and later call returns, and that leaves nothing
// running.
func TestDriverThatBreaksTheProtocol(t *testing.T) {
	for _, tc := range []struct {
		mode string
		// act drives the session into the fault and returns the error
		// the client sees.
		act  func(t *testing.T, p *driver.Process) error
		kind error
		want []string // in the error's text
	}{
		{"crash", callsUntilError, driver.ErrExited,
			[]string{"exited (exit status 3) before it was told to, with 1 calls unanswered", `its stderr ends: "panic: simulated crash after 2 calls"`}},
		{"grandchild", callsUntilError, driver.ErrExited, []string{"exit status 3"}},
		{"garbage", callsUntilError, driver.ErrBadMessage,
			[]string{`it printed a line that is not a protocol message (invalid character 'h' looking for beginning of value): "hello from the driver"`, "debug output goes to stderr"}},
		{"unknown-id", callsUntilError, driver.ErrUnknownCall, []string{`it answered call 1001, which it was never sent: "{\"type\":\"result\",\"id\":1001,`}},
		{"duplicate-id", callsUntilError, driver.ErrUnknownCall, []string{`it answered call 1 twice: "{\"type\":\"result\",\"id\":1,`}},
		{"hang", hangThenClose, driver.ErrHung, []string{"it did not answer close within 300ms (1 calls unanswered)"}},
		{"slow-exit", callThenClose, driver.ErrSlowExit, []string{"it did not exit within 300ms of shutdown; its process group was killed"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			pipes := openPipes(t)
			opts := []driver.Option(nil)
			if tc.kind == driver.ErrHung || tc.kind == driver.ErrSlowExit {
				opts = short
			}
			p, err := startFake(t, tc.mode, opts...)
			require.NoError(t, err)
			err = tc.act(t, p)
			requireProtocolError(t, err, tc.kind, tc.want...)

			_, later := get(t, p, 99)
			if !errors.Is(later, driver.ErrClosed) {
				assert.Equal(t, err, later, "a later call returns the same error")
			}
			closeErr := p.Close()
			assert.Equal(t, err.Error(), closeErr.Error(), "Close returns what ended the driver")
			assert.Equal(t, err.Error(), p.ProcessLeaks().Broken, "the history records it")
			checkClean(t, p.PID(), pipes)
		})
	}
}

func TestDriverThatFailsToStart(t *testing.T) {
	for _, tc := range []struct {
		mode string
		kind error
		want []string
	}{
		{"no-init", driver.ErrNoInitOK, []string{"it did not answer init within 300ms", "answer init with init_ok on stdout"}},
		{"exit-at-init", driver.ErrExited, []string{"exited (exit status 1) before it was told to", "ModuleNotFoundError: No module named 'requests'"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			pipes := openPipes(t)
			p, err := startFake(t, tc.mode, driver.WithInitTimeout(300*time.Millisecond))
			assert.Nil(t, p)
			requireProtocolError(t, err, tc.kind, tc.want...)
			var perr *driver.ProtocolError
			require.ErrorAs(t, err, &perr)
			checkClean(t, perr.PID, pipes)
		})
	}
	t.Run("not a command", func(t *testing.T) {
		_, err := driver.Start(context.Background(), []string{"/no/such/driver"}, fakeServices, harness.DefaultProfile())
		assert.ErrorContains(t, err, `starting "/no/such/driver"`)
		assert.ErrorContains(t, err, "give the command that runs your driver")
	})
	t.Run("canceled", func(t *testing.T) {
		pipes := openPipes(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cmd, env := fakeCmd("no-init")
		_, err := driver.Start(ctx, cmd, fakeServices, harness.DefaultProfile(), driver.WithEnv(env...))
		assert.ErrorIs(t, err, context.Canceled)
		checkClean(t, 0, pipes)
	})
}

func TestDriverLeaksAreMeasuredFromItsProcess(t *testing.T) {
	p, err := startFake(t, "leak-fds")
	require.NoError(t, err)
	defer p.Close()
	for i := range 20 {
		_, err := get(t, p, i)
		require.NoError(t, err)
	}
	p.CloseIdleConnections()
	pl := p.ProcessLeaks()
	require.True(t, pl.Measured, pl.Err)
	assert.Equal(t, p.PID(), pl.PID)
	// One file per call, never closed; the Go runtime of the fake driver
	// opens its poller (2 more) on its first file.
	assert.InDelta(t, 20, pl.After.FDs-pl.Before.FDs, 2, "one file per call, never closed")
	assert.Equal(t, pl.Before.Sockets, pl.After.Sockets)
	require.NoError(t, p.Close())
	assert.Equal(t, "the driver's process had exited", p.ProcessLeaks().Err, "nothing is measured of a process that is gone")
}

// callsUntilError makes calls one after another until one fails.
func callsUntilError(t *testing.T, p *driver.Process) error {
	for i := range 10 {
		resp, err := get(t, p, i)
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	t.Fatal("the driver answered 10 calls; it was meant to fail sooner")
	return nil
}

// hangThenClose leaves a call pending in a driver that answers nothing,
// then closes its idle connections: the hung driver is ended, and the
// pending call returns why.
func hangThenClose(t *testing.T, p *driver.Process) error {
	pending := make(chan error, 1)
	go func() {
		_, err := get(t, p, 1)
		pending <- err
	}()
	p.CloseIdleConnections()
	err := <-pending
	assert.Equal(t, p.Err(), err, "the pending call returns the error that ended the driver")
	return err
}

// callThenClose makes one good call, then closes the driver.
func callThenClose(t *testing.T, p *driver.Process) error {
	_, err := get(t, p, 1)
	require.NoError(t, err)
	return p.Close()
}

func requireProtocolError(t *testing.T, err error, kind error, want ...string) {
	t.Helper()
	require.Error(t, err)
	var perr *driver.ProtocolError
	require.ErrorAs(t, err, &perr, "%v", err)
	assert.ErrorIs(t, err, kind)
	assert.ErrorIs(t, err, harness.ErrClientGone, "the runner ends the workload on it")
	assert.Equal(t, harness.ClassOther, harness.Classify(err))
	for _, w := range want {
		assert.Contains(t, err.Error(), w)
	}
	assert.NotContains(t, err.Error(), "\n", "one line")
	assert.True(t, strings.HasPrefix(err.Error(), `driver "`), err.Error())
}

// BenchmarkProtocolRoundTrip is the protocol's own cost: calls through a
// driver that answers at once without any HTTP, 16 at a time.
func BenchmarkProtocolRoundTrip(b *testing.B) {
	p, err := startFake(b, "ok")
	require.NoError(b, err)
	defer p.Close()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	for range 16 {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				if _, err := get(b, p, int(n)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
