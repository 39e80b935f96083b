package pooledclient

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// countingServer is a loopback httptest server that keeps the server-side
// truth about connections: accepted, open, peak open, and each one's lifetime.
type countingServer struct {
	*httptest.Server
	mu       sync.Mutex
	accepted int
	open     int
	peak     int
	opened   map[net.Conn]time.Time
	lifetime []time.Duration // of closed connections
}

func newCountingServer(t *testing.T, h http.Handler) *countingServer {
	return startCountingServer(t, h, false, false)
}

func startCountingServer(t *testing.T, h http.Handler, useTLS, h2 bool) *countingServer {
	t.Helper()
	s := &countingServer{opened: map[net.Conn]time.Time{}}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch st {
		case http.StateNew:
			s.accepted++
			s.open++
			s.peak = max(s.peak, s.open)
			s.opened[c] = time.Now()
		case http.StateClosed, http.StateHijacked:
			if at, ok := s.opened[c]; ok {
				s.open--
				s.lifetime = append(s.lifetime, time.Since(at))
				delete(s.opened, c)
			}
		}
	}
	if useTLS {
		s.EnableHTTP2 = h2
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) counts() (accepted, open, peak int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, s.open, s.peak
}

func (s *countingServer) lifetimes() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.lifetime...)
}

// testConfig is a small, fast configuration pointed at base.
func testConfig(base string) Config {
	return Config{
		Name: "svc", BaseURL: base, MaxConnsPerHost: 4, MaxIdleConns: 4,
		ConnectTimeout: 2 * time.Second, TLSHandshakeTimeout: 2 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second,
		PoolWait: 5 * time.Second, IdleTimeout: time.Minute,
		Retry:   RetryConfig{MaxAttempts: 1},
		Breaker: BreakerConfig{Disabled: true},
	}
}

func newTestClient(t *testing.T, cfg Config, opts ...Option) (*Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := NewClient(cfg, append([]Option{WithRegisterer(reg)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, reg
}

// eventually polls cond every 10ms for at most d.
func eventually(t *testing.T, d time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, d, 10*time.Millisecond, append([]any{msg}, args...)...)
}
