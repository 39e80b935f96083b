package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// This file holds what the docker and remote environments share: reading
// server truth through admin clients, waiting for a started server, and the
// gate in front of a Toxiproxy API that keeps connections alive.

// environmentIgnores are the embedded environment's goroutine ignores. The
// docker and remote environments run their servers elsewhere, but the
// stacks are the same ones whenever servers do share the process (tests,
// the API gate), and no client under test runs them.
func environmentIgnores() []string {
	return append(slices.Clone(environmentFunctions), "github.com/poolproof/poolproof/harness/env.startAPIGate.func1")
}

func adminFor(admins map[string]*fakeservers.AdminClient, op, service string) (*fakeservers.AdminClient, error) {
	if c, ok := admins[service]; ok && c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%s %q: %w (no admin API known for it)", op, service, harness.ErrNoServerTruth)
}

func observeAdmin(ctx context.Context, admins map[string]*fakeservers.AdminClient, service string, timeout time.Duration) (fakeservers.Stats, error) {
	c, err := adminFor(admins, "observe", service)
	if err != nil {
		return fakeservers.Stats{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Idle admin connections would look like pooled connections of the
	// client under test to the goroutine leak check: drop them after use.
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		return fakeservers.Stats{}, fmt.Errorf("observe %q: %w", service, err)
	}
	return st, nil
}

func openConnsAdmin(ctx context.Context, admins map[string]*fakeservers.AdminClient, service string, timeout time.Duration) (int, error) {
	c, err := adminFor(admins, "open connections", service)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer c.Close() // see observeAdmin
	n, err := c.Conns(ctx)
	if err != nil {
		return 0, fmt.Errorf("open connections %q: %w", service, err)
	}
	return n.Open, nil
}

// resetAdmins makes every fake service forget its history and reseeds its
// draws (service i of fakeservers.Services with seed+i; a service that is
// not one of them after those, in name order); it goes on after a failure
// and returns every error.
func resetAdmins(ctx context.Context, admins map[string]*fakeservers.AdminClient, seed int64, timeout time.Duration) error {
	names := make([]string, 0, len(admins))
	for name := range admins {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := serviceIndex(a), serviceIndex(b)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	var errs []error
	for i, name := range names {
		c := admins[name]
		if j := serviceIndex(name); j < len(fakeservers.Services) {
			i = j
		}
		runSeed := seed + int64(i)
		func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			defer c.Close()
			if err := c.ResetSeed(ctx, runSeed); err != nil {
				errs = append(errs, fmt.Errorf("reset %q: %w", name, err))
			}
		}()
	}
	return errors.Join(errs...)
}

// serviceIndex is the position of service in fakeservers.Services, or
// len(fakeservers.Services) for any other name.
func serviceIndex(service string) int {
	if i := slices.Index(fakeservers.Services, service); i >= 0 {
		return i
	}
	return len(fakeservers.Services)
}

// waitReady polls probe until it succeeds or ctx ends, at most every 50ms.
func waitReady(ctx context.Context, what string, probe func(context.Context) error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = probe(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer: %w (last error: %w)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// toxiproxyVersion asks a Toxiproxy API for its version, over a connection
// that is closed afterwards.
func toxiproxyVersion(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/version", nil)
	if err != nil {
		return fmt.Errorf("toxiproxy URL %q: %w", base, err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("toxiproxy API %s/version: status %d, want 200 (is it Toxiproxy?)", base, resp.StatusCode)
	}
	return nil
}

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
