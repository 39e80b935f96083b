package runmetrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ErrNotLoopback is returned for an address a metrics server would serve
// beyond this machine: the run's metrics name its scenarios and services,
// and a certification is no service to expose.
var ErrNotLoopback = errors.New("not a loopback address")

// Server serves one Metrics registry over HTTP at /metrics until Close.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// shutdownTimeout bounds Close: a scrape in progress gets this long.
const shutdownTimeout = 2 * time.Second

// CheckLoopback refuses an address whose host is not a loopback IP or
// "localhost"; an empty host (":9090") listens on every interface.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w: give host:port, e.g. 127.0.0.1:9464", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q: %w: the run's metrics are served on this machine only; use 127.0.0.1:PORT or [::1]:PORT", addr, ErrNotLoopback)
}

// Serve listens on addr, a loopback address (see CheckLoopback), and serves
// m's registry at /metrics in a goroutine that Close stops.
func Serve(addr string, m *Metrics) (*Server, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{Registry: m.Registry()}))
	s := &Server{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // ends with http.ErrServerClosed at Close
	}()
	return s, nil
}

// Addr is the address the server listens on, the port chosen when addr
// asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, lets a scrape in progress finish (bounded) and
// waits for the serving goroutine.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done // Serve returns as soon as the listener is closed
	return err
}
