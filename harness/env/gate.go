package env

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// apiGate is a loopback reverse proxy in front of a Toxiproxy API that
// keeps connections alive (the official image, a remote server). Toxiproxy's
// client library uses http.DefaultTransport, which a client under test may
// share: its idle connections to the API would look like the client's own
// to the goroutine leak check. The gate answers without keep-alive and
// dials the API afresh for every call, so no idle connection outlives one.
type apiGate struct {
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport
	served chan struct{}

	closeOnce sync.Once
	closeErr  error
}

func startAPIGate(target string) (*apiGate, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("toxiproxy URL %q: want http://host:port: %v", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("toxiproxy API gate: listen on 127.0.0.1: %w", err)
	}
	tr := &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 30 * time.Second}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport: tr,
	}
	g := &apiGate{
		ln:     ln,
		tr:     tr,
		served: make(chan struct{}),
		srv: &http.Server{
			Handler:           rp,
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      60 * time.Second,
		},
	}
	g.srv.SetKeepAlivesEnabled(false)
	go func() {
		defer close(g.served)
		_ = g.srv.Serve(ln) // http.ErrServerClosed on Close
	}()
	return g, nil
}

func (g *apiGate) URL() string { return "http://" + g.ln.Addr().String() }

func (g *apiGate) Close() error {
	g.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := g.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, g.srv.Close())
		}
		<-g.served
		g.tr.CloseIdleConnections()
		g.closeErr = err
	})
	return g.closeErr
}
