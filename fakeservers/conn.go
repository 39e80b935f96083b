package fakeservers

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The http.Server reads IdleTimeout and ReadHeaderTimeout from plain fields,
// once per idle period or request, so changing them at run time would race.
// Instead the server is given these sentinels and every tracked connection
// swaps a deadline that far out for the current, atomically read policy. The
// HTTP/1.1 server therefore keeps its own exact semantics (idle deadline on
// the wait for the next request, header deadline on each request) while the
// values can change between requests.
const (
	readHeaderSentinel = 100_000 * time.Hour
	idleSentinel       = 200_000 * time.Hour
	sentinelFloor      = 50_000 * time.Hour
	sentinelSplit      = 150_000 * time.Hour
)

// connTracker is the server's truth about connections: exact counts from
// accept until the close is observed.
type connTracker struct {
	policy *atomic.Pointer[KeepAlive]
	tls    bool

	nextID   atomic.Uint64
	open     atomic.Int64
	peakOpen atomic.Int64
	busy     atomic.Int64
	peakBusy atomic.Int64
	// serving counts connections whose net/http goroutine has not yet reported
	// StateClosed or StateHijacked, so Close can wait for them.
	serving atomic.Int64

	mu       sync.Mutex
	conns    []*trackedConn // accepted since the last reset, plus those still open
	accepted int
}

func storeMax(peak *atomic.Int64, v int64) {
	for {
		p := peak.Load()
		if v <= p || peak.CompareAndSwap(p, v) {
			return
		}
	}
}

func (t *connTracker) track(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, tracker: t, id: t.nextID.Add(1), accepted: time.Now(), remote: c.RemoteAddr().String(), tls: t.tls}
	t.mu.Lock()
	t.conns = append(t.conns, tc)
	t.accepted++
	t.mu.Unlock()
	storeMax(&t.peakOpen, t.open.Add(1))
	return tc
}

// reset forgets closed connections and sets the peaks to the current values.
func (t *connTracker) reset() {
	t.mu.Lock()
	kept := make([]*trackedConn, 0, len(t.conns))
	for _, c := range t.conns {
		if !c.closed.Load() {
			kept = append(kept, c)
		}
	}
	t.conns = kept
	t.accepted = 0
	t.peakOpen.Store(t.open.Load())
	t.peakBusy.Store(t.busy.Load())
	t.mu.Unlock()
}

func (t *connTracker) counts() ConnCounts {
	t.mu.Lock()
	accepted := t.accepted
	t.mu.Unlock()
	return ConnCounts{
		Open:     int(t.open.Load()),
		Busy:     int(t.busy.Load()),
		PeakOpen: int(t.peakOpen.Load()),
		PeakBusy: int(t.peakBusy.Load()),
		Accepted: accepted,
	}
}

func (t *connTracker) snapshot(st *Stats) {
	t.mu.Lock()
	conns := append([]*trackedConn(nil), t.conns...)
	st.Accepted = t.accepted
	t.mu.Unlock()
	st.OpenConnections = int(t.open.Load())
	st.BusyConnections = int(t.busy.Load())
	st.PeakOpen = int(t.peakOpen.Load())
	st.PeakBusy = int(t.peakBusy.Load())
	st.Connections = make([]ConnRecord, 0, len(conns))
	for _, c := range conns {
		st.Connections = append(st.Connections, c.record())
	}
}

// closeIdle closes every open connection with no request in flight, the
// way an idle timeout would, and leaves those serving a request open. A
// request that arrives on a connection between the check and the close
// loses, as it would against a server's idle timeout; whoever asks (the
// harness at teardown) asks when no call is meant to be running.
func (t *connTracker) closeIdle() IdleClose {
	t.mu.Lock()
	conns := append([]*trackedConn(nil), t.conns...)
	t.mu.Unlock()
	out := IdleClose{Now: time.Now(), Closed: []ConnRecord{}, Busy: []ConnRecord{}}
	for _, c := range conns {
		if c.closed.Load() {
			continue
		}
		rec := c.record()
		if rec.InFlight > 0 {
			out.Busy = append(out.Busy, rec)
			continue
		}
		// The TCP connection itself, not the TLS layer above it: net/http's
		// goroutine for the connection is blocked reading from it, sees the
		// error and ends, as it does when the peer goes away.
		_ = c.Close()
		out.Closed = append(out.Closed, rec)
	}
	return out
}

// closeAll closes every connection still open; used by Server.Close for
// connections net/http no longer owns (hijacked ones).
func (t *connTracker) closeAll() {
	t.mu.Lock()
	conns := append([]*trackedConn(nil), t.conns...)
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// connState is the http.Server.ConnState hook.
func (t *connTracker) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		t.serving.Add(1)
	case http.StateClosed, http.StateHijacked:
		t.serving.Add(-1)
	}
	tc := unwrapConn(c)
	if tc == nil {
		return
	}
	if tlsConn, ok := c.(*tls.Conn); ok && !tc.protoKnown.Load() {
		if cs := tlsConn.ConnectionState(); cs.HandshakeComplete {
			tc.setTLS(cs)
		}
	}
	if state == http.StateIdle && tc.isH2.Load() && tc.inflight.Load() == 0 {
		tc.armIdle(c)
	}
}

// trackedConn wraps every accepted connection.
type trackedConn struct {
	net.Conn
	tracker  *connTracker
	id       uint64
	remote   string
	accepted time.Time

	requests   atomic.Int64
	inflight   atomic.Int32
	closed     atomic.Bool
	protoKnown atomic.Bool
	isH2       atomic.Bool
	lastRoute  atomic.Pointer[route] // of the last request; points into the server's routes

	mu        sync.Mutex // guards the fields below
	closedAt  time.Time
	proto     string
	tls       bool
	resumed   bool
	idleTimer *time.Timer
	idleArmed bool
	idleFrom  time.Time
	closer    net.Conn // what the idle timer closes: the outermost conn (tls.Conn for TLS)
}

type connKey struct{}

// connContext is the http.Server.ConnContext hook: requests find their
// connection through their context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc := unwrapConn(c); tc != nil {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

func connFromContext(ctx context.Context) *trackedConn {
	tc, _ := ctx.Value(connKey{}).(*trackedConn)
	return tc
}

func unwrapConn(c net.Conn) *trackedConn {
	switch v := c.(type) {
	case *trackedConn:
		return v
	case *tls.Conn:
		tc, _ := v.NetConn().(*trackedConn)
		return tc
	}
	return nil
}

func (c *trackedConn) setTLS(cs tls.ConnectionState) {
	c.mu.Lock()
	c.tls = true
	c.resumed = cs.DidResume
	if cs.NegotiatedProtocol == "h2" {
		c.proto = ProtoH2
		c.isH2.Store(true)
	} else {
		c.proto = ProtoHTTP1
	}
	c.mu.Unlock()
	c.protoKnown.Store(true)
}

// noteRequest records what only a request reveals: the protocol of an h2c
// connection, and the TLS state when no ConnState hook has seen it yet.
func (c *trackedConn) noteRequest(r *http.Request) {
	if c.protoKnown.Load() {
		return
	}
	if r.TLS != nil {
		c.setTLS(*r.TLS)
		return
	}
	c.mu.Lock()
	if r.ProtoMajor == 2 {
		c.proto = ProtoH2
		c.isH2.Store(true)
	} else {
		c.proto = ProtoHTTP1
	}
	c.mu.Unlock()
	c.protoKnown.Store(true)
}

// begin marks the connection busy; the returned count is the connection's
// request number (1-based).
func (c *trackedConn) begin() int64 {
	if c.inflight.Add(1) == 1 {
		storeMax(&c.tracker.peakBusy, c.tracker.busy.Add(1))
		if c.isH2.Load() {
			c.disarmIdle()
		}
	}
	return c.requests.Add(1)
}

// noteRoute remembers the route of the request being served, so a
// connection still open after teardown can say what it last carried.
func (c *trackedConn) noteRoute(rt *route) { c.lastRoute.Store(rt) }

func (c *trackedConn) end(outer net.Conn) {
	if c.inflight.Add(-1) == 0 {
		c.tracker.busy.Add(-1)
		if c.isH2.Load() {
			c.armIdle(outer)
		}
	}
}

// HTTP/2 has no per-idle-period read deadline to intercept, so its idle
// timeout is a timer armed whenever the connection has no stream in flight.
// A stream that races the timer loses, as it would against a real server.
func (c *trackedConn) armIdle(outer net.Conn) {
	d := c.tracker.policy.Load().IdleTimeout.Std()
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= 0 || c.closed.Load() {
		c.idleArmed = false
		return
	}
	if outer != nil {
		c.closer = outer
	}
	c.idleArmed = true
	c.idleFrom = time.Now()
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(d, c.onIdleTimer)
	} else {
		c.idleTimer.Reset(d)
	}
}

func (c *trackedConn) disarmIdle() {
	c.mu.Lock()
	c.idleArmed = false
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()
}

func (c *trackedConn) onIdleTimer() {
	d := c.tracker.policy.Load().IdleTimeout.Std()
	c.mu.Lock()
	fire := c.idleArmed && d > 0 && c.inflight.Load() == 0 && time.Since(c.idleFrom) >= d
	closer := c.closer
	c.mu.Unlock()
	if !fire {
		return
	}
	if closer == nil {
		closer = c
	}
	_ = closer.Close()
}

// SetReadDeadline swaps the server's sentinel deadlines for the current policy.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		if left := time.Until(t); left > sentinelFloor {
			ka := c.tracker.policy.Load()
			d := ka.ReadHeaderTimeout.Std()
			if left > sentinelSplit {
				d = ka.IdleTimeout.Std()
			}
			if d > 0 {
				t = time.Now().Add(d)
			} else {
				t = time.Time{}
			}
		}
	}
	return c.Conn.SetReadDeadline(t)
}

// Close is where a connection's close is observed, whoever closes it.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.mu.Lock()
		c.closedAt = time.Now()
		c.idleArmed = false
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
		c.mu.Unlock()
		c.tracker.open.Add(-1)
	}
	return err
}

// reset closes the connection with a TCP RST instead of a FIN, the way a
// crashed process or a middlebox tears it down.
func (c *trackedConn) reset() error {
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	return c.Close()
}

func (c *trackedConn) record() ConnRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	proto := c.proto
	if proto == "" {
		proto = ProtoHTTP1 // nothing negotiated yet: every connection starts as HTTP/1.x
	}
	var last string
	if rt := c.lastRoute.Load(); rt != nil {
		last = rt.method + " " + rt.pattern
	}
	return ConnRecord{
		ID:         c.id,
		Remote:     c.remote,
		Accepted:   c.accepted,
		Closed:     c.closedAt,
		Requests:   int(c.requests.Load()),
		Protocol:   proto,
		TLS:        c.tls,
		TLSResumed: c.resumed,
		InFlight:   int(c.inflight.Load()),
		LastRoute:  last,
	}
}

// trackingListener hands every accepted connection to the tracker.
type trackingListener struct {
	net.Listener
	tracker *connTracker
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.tracker.track(c), nil
}
