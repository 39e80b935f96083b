package env

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// toxiRig is Toxiproxy in-process in front of a plain httptest upstream,
// driven only through the FaultDriver (Toxiproxy's HTTP API).
type toxiRig struct {
	driver   *FaultDriver
	proxyURL string // http://127.0.0.1:<proxy port>
	proxy    string // host:port of the proxy
	hits     atomic.Int64
	open     atomic.Int64 // server-side open connections
}

const rigService = "svc"

func newToxiRig(t *testing.T) *toxiRig {
	t.Helper()
	ctx := context.Background()
	r := &toxiRig{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			r.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			r.open.Add(-1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)

	tp, err := StartToxiproxy(ctx, "")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tp.Close()) })

	r.driver = NewFaultDriver(tp.URL(), nil, 5*time.Second)
	r.proxy, err = r.driver.CreateProxy(ctx, rigService, "127.0.0.1:0", up.Listener.Addr().String())
	require.NoError(t, err)
	r.proxyURL = "http://" + r.proxy
	return r
}

// serve answers /hit with "ok" and /bytes?n=N with N seeded pseudo-random
// bytes plus their digest in X-Body-Digest.
func (r *toxiRig) serve(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	switch req.URL.Path {
	case "/bytes":
		n, _ := strconv.Atoi(req.URL.Query().Get("n"))
		body := seededBytes(n)
		sum := sha256.Sum256(body)
		w.Header().Set(fakeservers.HeaderBodyDigest, "sha256="+hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(body)
	default:
		_, _ = io.WriteString(w, "ok")
	}
}

func seededBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(42, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// freshClient opens a new connection per request, so that per-connection
// toxics (reset_peer, toxicity draws) apply to every request.
func freshClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// get does one GET and reads the whole body; it returns the body, the time
// to the end of the body, and the first error.
func get(c *http.Client, url string) ([]byte, http.Header, time.Duration, error) {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return nil, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.Header, time.Since(start), err
}

// heldConn dials addr by hand, completes one GET of path on it and keeps
// the keep-alive connection open, so a test can see what a fault does to a
// live idle connection (its next read fails once the connection is cut).
func heldConn(t *testing.T, addr, host, path string) *bufio.Reader {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	br := bufio.NewReader(conn)
	_, err = io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return br
}

func medianGet(t *testing.T, c *http.Client, url string) time.Duration {
	t.Helper()
	var ds []time.Duration
	for range 3 {
		_, _, d, err := get(c, url)
		require.NoError(t, err)
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds[1]
}

func (r *toxiRig) apply(t *testing.T, a harness.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.driver.Apply(ctx, a))
}

func TestToxicLatencyAddsDelayOnEitherStream(t *testing.T) {
	const latency = 300 * time.Millisecond
	for _, stream := range []string{harness.Upstream, harness.Downstream} {
		t.Run(stream, func(t *testing.T) {
			r := newToxiRig(t)
			c := freshClient(t, 10*time.Second)
			base := medianGet(t, c, r.proxyURL+"/hit")

			r.apply(t, harness.AddToxic(rigService, harness.Latency("lat", stream, latency, 0)))
			_, _, d, err := get(c, r.proxyURL+"/hit")
			require.NoError(t, err)
			assert.GreaterOrEqual(t, d, latency, "latency toxic must delay the request")
			assert.Greater(t, d, base+latency/2, "delay must be added to the baseline %v", base)

			r.apply(t, harness.RemoveToxic(rigService, "lat"))
			_, _, d, err = get(c, r.proxyURL+"/hit")
			require.NoError(t, err)
			assert.Less(t, d, latency, "removing the toxic must remove the delay")
		})
	}
}

func TestToxicityZeroHasNoEffect(t *testing.T) {
	r := newToxiRig(t)
	c := freshClient(t, 10*time.Second)
	r.apply(t, harness.AddToxic(rigService, harness.Latency("never", harness.Downstream, 2*time.Second, 0, harness.WithToxicity(0))))

	st, err := r.driver.Proxy(context.Background(), rigService)
	require.NoError(t, err)
	require.Len(t, st.Toxics, 1, "the toxic must be installed, only never drawn")
	assert.InDelta(t, 0, st.Toxics[0].Toxicity, 1e-9)

	for range 3 {
		_, _, d, err := get(c, r.proxyURL+"/hit")
		require.NoError(t, err)
		assert.Less(t, d, time.Second, "toxicity 0 must never apply the 2s latency")
	}
}

func TestToxicBandwidthSlowsLargeBody(t *testing.T) {
	r := newToxiRig(t)
	c := freshClient(t, 30*time.Second)
	const n = 150_000
	url := r.proxyURL + "/bytes?n=" + strconv.Itoa(n)
	base := medianGet(t, c, url)

	// 150 KB at 100 KB/s takes about 1.5s.
	r.apply(t, harness.AddToxic(rigService, harness.Bandwidth("bw", harness.Downstream, 100)))
	body, _, d, err := get(c, url)
	require.NoError(t, err)
	assert.Len(t, body, n)
	assert.GreaterOrEqual(t, d, 750*time.Millisecond, "bandwidth toxic must slow the body (baseline %v)", base)
	assert.Greater(t, d, 4*base)
}

func TestToxicTimeoutHonoursStream(t *testing.T) {
	// A blackhole upstream keeps the request from the server; downstream the
	// server answers but the client never sees it. Either way the client's
	// own timeout is what ends the call.
	for _, tc := range []struct {
		stream         string
		serverSeesCall bool
	}{
		{harness.Upstream, false},
		{harness.Downstream, true},
	} {
		t.Run(tc.stream, func(t *testing.T) {
			r := newToxiRig(t)
			// Keep-alive, so the server does not close after answering:
			// Toxiproxy's blackhole passes the upstream's close through.
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr, Timeout: 400 * time.Millisecond}
			r.apply(t, harness.AddToxic(rigService, harness.Timeout("hole", tc.stream, 0)))
			before := r.hits.Load()

			_, _, d, err := get(c, r.proxyURL+"/hit")
			require.Error(t, err)
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			assert.True(t, ne.Timeout(), "want a timeout, got %v", err)
			assert.Less(t, d, 5*time.Second)

			// The downstream request may still be in flight to the server when
			// the client gives up; wait for it, bounded.
			if tc.serverSeesCall {
				assert.Eventually(t, func() bool { return r.hits.Load() == before+1 }, 5*time.Second, 10*time.Millisecond)
			} else {
				time.Sleep(200 * time.Millisecond)
				assert.Equal(t, before, r.hits.Load(), "an upstream blackhole must keep the request from the server")
			}
		})
	}
}

func TestToxicResetPeerResetsConnection(t *testing.T) {
	r := newToxiRig(t)
	c := freshClient(t, 10*time.Second)
	r.apply(t, harness.AddToxic(rigService, harness.ResetPeer("rst", harness.Downstream, 0)))
	for range 3 {
		_, _, _, err := get(c, r.proxyURL+"/hit")
		require.Error(t, err)
		assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF),
			"want a connection reset or EOF, got %v", err)
	}
}

func TestToxicSlicerKeepsBodyIntact(t *testing.T) {
	r := newToxiRig(t)
	c := freshClient(t, 30*time.Second)
	r.apply(t, harness.AddToxic(rigService, harness.Slicer("slice", harness.Downstream, 100, 50, 50*time.Microsecond)))
	const n = 64 << 10
	body, hdr, _, err := get(c, r.proxyURL+"/bytes?n="+strconv.Itoa(n))
	require.NoError(t, err)
	require.Len(t, body, n)
	sum := sha256.Sum256(body)
	assert.Equal(t, hdr.Get(fakeservers.HeaderBodyDigest), "sha256="+hex.EncodeToString(sum[:]))
}

func TestToxicLimitDataCutsBody(t *testing.T) {
	r := newToxiRig(t)
	c := freshClient(t, 10*time.Second)
	r.apply(t, harness.AddToxic(rigService, harness.LimitData("cut", harness.Downstream, 1000)))
	const n = 64 << 10
	body, _, _, err := get(c, r.proxyURL+"/bytes?n="+strconv.Itoa(n))
	require.Error(t, err, "a cut body must fail the read")
	assert.Less(t, len(body), 1000)
}

func TestToxicSlowCloseDelaysClose(t *testing.T) {
	r := newToxiRig(t)
	const delay = 600 * time.Millisecond
	timeToEOF := func() time.Duration {
		conn, err := net.DialTimeout("tcp", r.proxy, 5*time.Second)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		start := time.Now()
		_, err = io.WriteString(conn, "GET /hit HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		// The server closed after the response; we see EOF when the proxy
		// closes our side.
		_, err = conn.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF)
		return time.Since(start)
	}
	base := timeToEOF()
	r.apply(t, harness.AddToxic(rigService, harness.SlowClose("slowclose", harness.Downstream, delay)))
	d := timeToEOF()
	assert.GreaterOrEqual(t, d, delay, "slow_close must delay the close (baseline %v)", base)
}

func TestDisableProxyDropsConnectionsAndEnableAcceptsAgain(t *testing.T) {
	r := newToxiRig(t)

	// A live keep-alive connection, held by hand so we see its next read fail.
	br := heldConn(t, r.proxy, "svc", "/hit")
	require.Eventually(t, func() bool { return r.open.Load() == 1 }, 5*time.Second, 10*time.Millisecond)

	r.apply(t, harness.DisableProxy(rigService))
	assert.Eventually(t, func() bool { return r.open.Load() == 0 }, 5*time.Second, 10*time.Millisecond,
		"disabling the proxy must close the server side of live connections")
	_, err := br.ReadByte()
	assert.Error(t, err, "the client's next read on a dropped connection must fail")

	c := freshClient(t, 2*time.Second)
	_, _, _, err = get(c, r.proxyURL+"/hit")
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "a disabled proxy must refuse new connections")

	r.apply(t, harness.EnableProxy(rigService))
	body, _, _, err := get(c, r.proxyURL+"/hit")
	require.NoError(t, err)
	assert.Equal(t, "ok", string(body))
}

func TestFaultDriverResetClearsToxicsAndEnables(t *testing.T) {
	r := newToxiRig(t)
	r.apply(t, harness.AddToxic(rigService, harness.Latency("", harness.Downstream, time.Second, 0)))
	r.apply(t, harness.DisableProxy(rigService))

	require.NoError(t, r.driver.Reset(context.Background()))
	st, err := r.driver.Proxy(context.Background(), rigService)
	require.NoError(t, err)
	assert.True(t, st.Enabled)
	assert.Empty(t, st.Toxics)
	_, _, d, err := get(freshClient(t, 5*time.Second), r.proxyURL+"/hit")
	require.NoError(t, err)
	assert.Less(t, d, time.Second)
}

func TestFaultDriverErrorsNameTheField(t *testing.T) {
	r := newToxiRig(t)
	r.apply(t, harness.AddToxic(rigService, harness.Latency("dup", harness.Downstream, time.Millisecond, 0)))
	lat := harness.Latency("x", harness.Downstream, time.Millisecond, 0)
	for _, tc := range []struct {
		name   string
		action harness.Action
		is     error
		says   string
	}{
		{"empty service", harness.Action{Kind: harness.ActionEnableProxy}, harness.ErrInvalidAction, "Action.Service"},
		{"empty kind", harness.Action{Service: rigService}, harness.ErrInvalidAction, "Action.Kind"},
		{"unknown kind", harness.Action{Kind: "explode", Service: rigService}, harness.ErrInvalidAction, `Action.Kind "explode"`},
		{"nil toxic", harness.Action{Kind: harness.ActionAddToxic, Service: rigService}, harness.ErrInvalidAction, "Action.Toxic"},
		{"no toxic type", harness.AddToxic(rigService, harness.Toxic{Name: "t", Stream: harness.Upstream, Toxicity: 1}), harness.ErrInvalidAction, "Toxic.Type"},
		{"bad stream", harness.AddToxic(rigService, harness.Latency("s", "sideways", time.Millisecond, 0)), harness.ErrInvalidAction, "Toxic.Stream"},
		{"bad toxicity", harness.AddToxic(rigService, harness.Latency("p", harness.Upstream, time.Millisecond, 0, harness.WithToxicity(2))), harness.ErrInvalidAction, "Toxic.Toxicity"},
		{"unknown toxic type", harness.AddToxic(rigService, harness.Toxic{Name: "t", Type: "gremlin", Stream: harness.Upstream, Toxicity: 1}), harness.ErrInvalidAction, "Toxic.Type"},
		{"duplicate toxic", harness.AddToxic(rigService, harness.Latency("dup", harness.Downstream, time.Millisecond, 0)), harness.ErrToxicExists, "Toxic.Name"},
		{"no toxic name", harness.Action{Kind: harness.ActionRemoveToxic, Service: rigService}, harness.ErrInvalidAction, "Action.ToxicName"},
		{"missing toxic", harness.RemoveToxic(rigService, "ghost"), harness.ErrUnknownToxic, `"ghost"`},
		{"unknown service toxic", harness.AddToxic("nope", lat), harness.ErrUnknownService, `"nope"`},
		{"unknown service disable", harness.DisableProxy("nope"), harness.ErrUnknownService, "Action.Service"},
		{"unknown service faults", harness.SetHTTPFaults("nope", fakeservers.Fault{Kind: fakeservers.FaultDelay}), harness.ErrUnknownService, `"nope"`},
		{"not a fake service", harness.ClearHTTPFaults(rigService), harness.ErrNoServerTruth, "admin API"},
		{"empty faults", harness.SetHTTPFaults(rigService), harness.ErrInvalidAction, "Action.HTTPFaults"},
		{"fault without kind", harness.SetHTTPFaults(rigService, fakeservers.Fault{}), harness.ErrInvalidAction, "Action.HTTPFaults[0].Kind"},
		{"nil keepalive", harness.Action{Kind: harness.ActionSetKeepAlive, Service: rigService}, harness.ErrInvalidAction, "Action.KeepAlive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.driver.Apply(context.Background(), tc.action)
			require.ErrorIs(t, err, tc.is)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
}

func TestCreateProxyTwiceIsErrProxyExists(t *testing.T) {
	r := newToxiRig(t)
	_, err := r.driver.CreateProxy(context.Background(), rigService, "127.0.0.1:0", r.proxy)
	require.ErrorIs(t, err, harness.ErrProxyExists)
	_, err = r.driver.CreateProxy(context.Background(), "", "127.0.0.1:0", r.proxy)
	require.ErrorIs(t, err, harness.ErrInvalidAction)
}

// silentAPI accepts connections and never answers, like a Toxiproxy API
// hung under load.
type silentAPI struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func startSilentAPI(t *testing.T) *silentAPI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &silentAPI{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.closeAll)
	return s
}

func TestFaultDriverCallAgainstHungAPIEndsAtCallTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	api := startSilentAPI(t)
	for _, tc := range []struct {
		name        string
		callTimeout time.Duration
		ctxTimeout  time.Duration
	}{
		{"call timeout", 300 * time.Millisecond, time.Minute},
		{"context deadline", time.Minute, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewFaultDriver("http://"+api.ln.Addr().String(), nil, tc.callTimeout)
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctxTimeout)
			defer cancel()
			start := time.Now()
			err := d.Apply(ctx, harness.AddToxic("payment", harness.Latency("", harness.Downstream, time.Second, 0)))
			elapsed := time.Since(start)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Contains(t, err.Error(), "no answer within")
			assert.Less(t, elapsed, 3*time.Second, "must not wait for the client's own 30s timeout")
			assert.GreaterOrEqual(t, elapsed, 250*time.Millisecond)
		})
	}
	// Cancelled before the call: no goroutine is started at all.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := NewFaultDriver("http://"+api.ln.Addr().String(), nil, time.Second).Apply(ctx, harness.DisableProxy("payment"))
	require.ErrorIs(t, err, context.Canceled)
	// The deferred leak check runs before t.Cleanup: close the silent API's
	// connections now, which ends the abandoned calls with EOF.
	api.closeAll()
}

func TestAbandonedFaultDriverCallIsAnEnvironmentGoroutine(t *testing.T) {
	api := startSilentAPI(t)
	d := NewFaultDriver("http://"+api.ln.Addr().String(), nil, 100*time.Millisecond)
	err := d.Apply(context.Background(), harness.DisableProxy("payment"))
	require.ErrorContains(t, err, "no answer within")

	// The call goes on in the background; a leak check must not blame the
	// client under test for it.
	buf := make([]byte, 1<<20)
	stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
	calls := 0
	for _, g := range stacks {
		if !strings.Contains(g, "(*FaultDriver).setEnabled") {
			continue
		}
		calls++
		ignored := slices.ContainsFunc(GoroutineIgnores(), func(f string) bool { return strings.Contains(g, f+"(") })
		assert.True(t, ignored, "the abandoned call's goroutine is not ignored; name it in environmentFunctions:\n%s", g)
	}
	assert.Equal(t, 1, calls, "one abandoned call still waits on the silent API")
}

func (s *silentAPI) closeAll() {
	_ = s.ln.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}
