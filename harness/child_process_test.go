package harness_test

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

// childClient stands in for a driver: it says it runs in a child process
// and measures that "process" itself (counts set by the test). When
// holdOne is set it keeps the body of its first response open, holding a
// connection busy, until Close: as a process's exit would close it.
type childClient struct {
	inner   *http.Client
	holdOne bool
	after   harness.ProcessCounts

	mu     sync.Mutex
	held   io.Closer
	events []string
}

func (c *childClient) log(e string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *childClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	hold := c.holdOne && c.held == nil
	if hold {
		c.held = resp.Body
	}
	c.mu.Unlock()
	if hold {
		// The leaked body stays unread; the caller gets a copy of nothing
		// the digest would match, so it is answered from a second call.
		return c.inner.Do(req.Clone(req.Context()))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (c *childClient) CloseIdleConnections() {
	c.log("idle")
	c.inner.CloseIdleConnections()
}

func (c *childClient) ProcessLeaks() harness.ProcessLeaks {
	c.log("measure")
	return harness.ProcessLeaks{Command: "fake-driver --flag", PID: 4242, Client: "fake 1.0", Measured: true,
		Before: harness.ProcessCounts{FDs: 10, Sockets: 0, Threads: 4}, After: c.after}
}

func (c *childClient) Close() error {
	c.log("close")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil {
		c.held.Close()
	}
	c.inner.CloseIdleConnections()
	return nil
}

func TestRunMeasuresAClientInAChildProcessBeforeClosingIt(t *testing.T) {
	env := newEmbeddedEnv(t)
	for _, tc := range []struct {
		name    string
		holdOne bool
		after   harness.ProcessCounts
		fds     harness.Status
		conns   harness.Status
		reason  string
	}{
		{"clean", false, harness.ProcessCounts{FDs: 11, Threads: 5}, harness.StatusPass, harness.StatusPass, "holds 11 open file descriptors (0 sockets) and 5 threads after idle close"},
		{"leaks sockets", true, harness.ProcessCounts{FDs: 30, Sockets: 20, Threads: 5}, harness.StatusFail, harness.StatusFail, "holds 20 more open file descriptors after idle close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := &childClient{inner: &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(env.Services()[0], 16)}, holdOne: tc.holdOne, after: tc.after}
			factory := func(harness.Service) (harness.Client, error) { return shared, nil }
			spec := harnesstest.ShortSpec("child-"+tc.name, 5)
			h, err := harness.Run(harnesstest.Ctx(t), env, factory, spec, harness.WithSettle(300*time.Millisecond))
			require.NoError(t, err)

			events := shared.events
			require.GreaterOrEqual(t, len(events), 3, "%v", events)
			assert.Equal(t, "idle", events[0])
			assert.Equal(t, "measure", events[1], "the process is measured after idle close")
			assert.Equal(t, "close", events[len(events)-1], "and before Close, which would end it")

			require.Len(t, h.Leaks.Processes, 1, "a client shared by every service is measured once")
			assert.Equal(t, 4242, h.Leaks.Processes[0].PID)
			assert.Equal(t, 8, h.Leaks.ThreadTolerance)

			g := check.GoroutineLeak{}.Judge(h)
			assert.Equal(t, harness.StatusNotApplicable, g.Status, "never passed: %s", g)
			assert.Contains(t, g.Reason, "fake 1.0, fake-driver --flag, pid 4242")
			fd := check.FDLeak{}.Judge(h)
			assert.Equal(t, tc.fds, fd.Status, "%s", fd)
			assert.Contains(t, fd.Reason, tc.reason)
			sc := check.ServerConnLeak{}.Judge(h)
			assert.Equal(t, tc.conns, sc.Status, "the servers' connections are read before Close: %s", sc)
		})
	}
}
