package pooledclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// errConnRetired is what a connection past MaxLifetime answers when the
// transport tries to start a new request on it. Nothing has been written, so
// the transport retries the request on a fresh connection by itself.
var errConnRetired = errors.New("pooledclient: connection retired: past MaxLifetime")

// ConnStats is the client's exact count of its connections.
type ConnStats struct {
	Open   int   // dialled and not yet closed
	Active int   // open and carrying at least one call
	Idle   int   // open and carrying no call
	Opened int64 // dialled since the client was built
	Closed int64 // closed since the client was built
}

type hostMetrics struct {
	active, idle   prometheus.Gauge
	opened, closed prometheus.Counter
}

// connSet tracks every connection of one client from dial to close. The
// counters are the source of the metrics, so the two never disagree.
type connSet struct {
	service  string
	m        *metrics
	lifetime time.Duration

	mu    sync.Mutex
	hosts map[string]*hostMetrics
	conns map[*trackedConn]struct{}

	open, active, opened, closed atomic.Int64
}

func newConnSet(service string, m *metrics, lifetime time.Duration) *connSet {
	return &connSet{service: service, m: m, lifetime: lifetime,
		hosts: map[string]*hostMetrics{}, conns: map[*trackedConn]struct{}{}}
}

func (s *connSet) stats() ConnStats {
	open, active := s.open.Load(), s.active.Load()
	return ConnStats{Open: int(open), Active: int(active), Idle: int(open - active),
		Opened: s.opened.Load(), Closed: s.closed.Load()}
}

func (s *connSet) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return s.track(c, addr), nil
	}
}

func (s *connSet) track(c net.Conn, host string) *trackedConn {
	s.mu.Lock()
	hm := s.hosts[host]
	if hm == nil {
		hm = &hostMetrics{
			active: s.m.connsActive.WithLabelValues(s.service, host),
			idle:   s.m.connsIdle.WithLabelValues(s.service, host),
			opened: s.m.connsOpened.WithLabelValues(s.service, host),
			closed: s.m.connsClosed.WithLabelValues(s.service, host),
		}
		s.hosts[host] = hm
	}
	tc := &trackedConn{Conn: c, set: s, hm: hm, dialed: time.Now(), writing: true}
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	s.open.Add(1)
	s.opened.Add(1)
	hm.opened.Inc()
	hm.idle.Inc()
	if s.lifetime > 0 {
		tc.mu.Lock()
		tc.timer = time.AfterFunc(s.lifetime, tc.expire)
		tc.mu.Unlock()
	}
	return tc
}

// closeAll closes every tracked connection; used by Close after the
// transport has dropped its idle ones, for connections still held by calls
// whose bodies were never closed.
func (s *connSet) snapshot() []*trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// trackedConn is a dialled connection whose every state change (idle,
// active, expiring, closed) is counted. "Active" is driven by the calls:
// httptrace's GotConn marks the start, the end of the call's response body
// the end; for HTTP/2 it counts streams.
type trackedConn struct {
	net.Conn
	set    *connSet
	hm     *hostMetrics
	dialed time.Time
	wrote  atomic.Bool // a Write of the current call put bytes on the socket

	mu       sync.Mutex
	inflight int
	writing  bool  // bytes of the current HTTP/1 request were written
	readErr  error // the first error reading from the connection
	expiring bool  // past MaxLifetime
	closed   bool
	h2       bool
	timer    *time.Timer
}

// trackedOf finds the tracked connection under what GotConn reports (the
// tracked conn itself for http, a *tls.Conn around it for https).
func trackedOf(c net.Conn) *trackedConn {
	switch v := c.(type) {
	case *trackedConn:
		return v
	case *tls.Conn:
		t, _ := v.NetConn().(*trackedConn)
		if t != nil {
			t.mu.Lock()
			t.h2 = v.ConnectionState().NegotiatedProtocol == "h2"
			t.mu.Unlock()
		}
		return t
	}
	return nil
}

// acquire marks one more call on the connection.
func (c *trackedConn) acquire() {
	c.wrote.Store(false) // even on a closed one: no byte of this call reached it yet
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.inflight++
	c.writing = false
	first := c.inflight == 1
	c.mu.Unlock()
	if first {
		c.hm.idle.Dec()
		c.hm.active.Inc()
		c.set.active.Add(1)
	}
}

// release marks the end of a call; a connection past its lifetime is
// closed once no call uses it.
func (c *trackedConn) release() {
	c.mu.Lock()
	if c.closed || c.inflight == 0 {
		c.mu.Unlock()
		return
	}
	c.inflight--
	last := c.inflight == 0
	retire := last && c.expiring
	c.mu.Unlock()
	if last {
		c.hm.active.Dec()
		c.hm.idle.Inc()
		c.set.active.Add(-1)
	}
	if retire {
		_ = c.Close()
	}
}

// expire runs when the connection reaches MaxLifetime. An idle connection is
// closed now (the transport drops it from its idle list); a busy one finishes
// its call first. Either way no new request can start on it (see Write).
func (c *trackedConn) expire() {
	c.mu.Lock()
	c.expiring = true
	idle := c.inflight == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		_ = c.Close()
	}
}

// Write refuses to start a new HTTP/1 request on an expiring connection.
// Because not a byte was written, net/http's transport retries the request
// on another connection (even a POST), so retirement never fails a call.
// Writes of a request already under way go through.
func (c *trackedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.expiring && !c.writing && !c.h2 {
		c.mu.Unlock()
		return 0, errConnRetired
	}
	c.writing = true
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	if n > 0 && !c.wrote.Load() {
		c.wrote.Store(true)
	}
	return n, err
}

// Read remembers the first error, so that a call whose transport attempt
// died can report what killed it (see call.replayGate).
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.readErr == nil {
			c.readErr = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// lostRequest reports whether the current call's request reached the socket
// and, if so, the error the connection died of (nil when it died without a
// read error, e.g. a failed write after the first bytes).
func (c *trackedConn) lostRequest() (sent bool, readErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wrote.Load() && !c.h2, c.readErr
}

func (c *trackedConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.Conn.Close()
	}
	c.closed = true
	wasActive := c.inflight > 0
	c.inflight = 0
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	if wasActive {
		c.hm.active.Dec()
		c.set.active.Add(-1)
	} else {
		c.hm.idle.Dec()
	}
	c.hm.closed.Inc()
	c.set.open.Add(-1)
	c.set.closed.Add(1)
	c.set.mu.Lock()
	delete(c.set.conns, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTLSError(err error) bool {
	var (
		rh  tls.RecordHeaderError
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		alt tls.AlertError
	)
	return errors.As(err, &rh) || errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) ||
		errors.As(err, &ci) || errors.As(err, &alt)
}
