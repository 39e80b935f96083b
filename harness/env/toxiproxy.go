package env

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ToxiproxyServer is Toxiproxy running in this process from its Go module,
// serving its real HTTP API on a listener we own, so that the port is known
// before the first call and the server can be shut down deterministically.
type ToxiproxyServer struct {
	api    *toxiproxy.ApiServer
	ln     net.Listener
	http   *http.Server
	served chan struct{} // closed when Serve returns

	closeOnce sync.Once
	closeErr  error
}

// StartToxiproxy starts Toxiproxy's API on listen ("127.0.0.1:0" when empty)
// and returns once it accepts connections. ctx bounds the start only.
func StartToxiproxy(ctx context.Context, listen string) (*ToxiproxyServer, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy API: listen on %s: %w", listen, err)
	}
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	s := &ToxiproxyServer{
		api: api,
		ln:  ln,
		http: &http.Server{
			Handler:           api.Routes(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		served: make(chan struct{}),
	}
	// Toxiproxy's client uses http.DefaultTransport, which it shares with any
	// client under test that uses it too; without keep-alive the driver's
	// connections close after each call and never look like a client's idle
	// pooled connection to the goroutine leak check.
	s.http.SetKeepAlivesEnabled(false)
	go func() {
		defer close(s.served)
		_ = s.http.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return s, nil
}

// URL is the API's base URL, e.g. "http://127.0.0.1:34567".
func (s *ToxiproxyServer) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the API's host:port.
func (s *ToxiproxyServer) Addr() string { return s.ln.Addr().String() }

// Close stops every proxy (closing their connections), then the API server.
// It is idempotent.
func (s *ToxiproxyServer) Close() error {
	s.closeOnce.Do(func() {
		// Proxies are normally deleted through the API by their creator; this
		// catches the ones left behind so no accept loop or link survives.
		errClear := s.api.Collection.Clear()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errShut := s.http.Shutdown(ctx)
		if errShut != nil {
			errShut = errors.Join(errShut, s.http.Close())
		}
		select {
		case <-s.served:
		case <-ctx.Done():
			errShut = errors.Join(errShut, fmt.Errorf("toxiproxy API %s: serve loop did not stop within 5s", s.URL()))
		}
		s.closeErr = errors.Join(errClear, errShut)
	})
	return s.closeErr
}
