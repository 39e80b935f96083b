package env

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Embedded is the default environment: the three fake services and
// Toxiproxy, all in this process on 127.0.0.1, and all driven over HTTP
// (Toxiproxy's API and the services' admin API) exactly as the docker and
// remote environments are, so no check depends on in-process access.
type Embedded struct {
	cfg      config
	ca       *fakeservers.CA
	servers  map[string]*fakeservers.Server
	admins   map[string]*fakeservers.AdminClient
	toxi     *ToxiproxyServer
	driver   *FaultDriver
	proxies  []string // created through the API, deleted by Close
	services []harness.Service
	replicas map[string][]harness.Service // by service, for the services WithReplicas runs as several
	faults   harness.Faults

	closeOnce sync.Once
	closeErr  error
}

var (
	_ harness.Environment       = (*Embedded)(nil)
	_ harness.ConnectionCounter = (*Embedded)(nil)
	_ harness.IdleConnCloser    = (*Embedded)(nil)
	_ harness.Replicated        = (*Embedded)(nil)
)

// NewEmbedded starts one CA, the three fake services (all signed by that
// CA), Toxiproxy with its HTTP API on an ephemeral loopback port, and one
// proxy per service created through that API. On any failure everything
// already started is stopped before the error is returned. The caller owns
// the result and must Close it.
func NewEmbedded(ctx context.Context, opts ...Option) (_ *Embedded, err error) {
	cfg := newConfig(opts)
	if err := cfg.only(NameEmbedded, optSeed, optTLS, optHTTP2, optLatency, optKeepAlive, optCallTimeout, optReplicas); err != nil {
		return nil, err
	}
	if err := errors.Join(cfg.validate(NameEmbedded), cfg.validateReplicas(NameEmbedded)); err != nil {
		return nil, err
	}

	e := &Embedded{
		cfg:      cfg,
		servers:  map[string]*fakeservers.Server{},
		admins:   map[string]*fakeservers.AdminClient{},
		replicas: map[string][]harness.Service{},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()

	if cfg.tls {
		if e.ca, err = fakeservers.NewCA(); err != nil {
			return nil, fmt.Errorf("embedded environment: generating the CA: %w", err)
		}
	}
	for _, in := range cfg.instances() {
		name := in.name
		lj := cfg.latency[in.service]
		srv, err := fakeservers.Start(ctx, fakeservers.Config{
			Service:      in.service,
			Listen:       "127.0.0.1:0",
			AdminListen:  "127.0.0.1:0",
			TLS:          cfg.tls,
			DisableHTTP2: !cfg.http2,
			Latency:      lj.latency,
			Jitter:       lj.jitter,
			Seed:         cfg.seed + in.seed,
			KeepAlive:    cfg.keepAlive[in.service],
			CA:           e.ca,
		})
		if err != nil {
			return nil, fmt.Errorf("embedded environment: starting fake service %s: %w", name, err)
		}
		e.servers[name] = srv
		e.admins[name] = fakeservers.NewAdminClient(srv.AdminURL())
	}

	if e.toxi, err = StartToxiproxy(ctx, "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded environment: %w", err)
	}
	e.driver = NewFaultDriver(e.toxi.URL(), e.admins, cfg.callTimeout, WithBaselineKeepAlive(cfg.keepAlive))
	e.faults = e.driver

	scheme := "http"
	if cfg.tls {
		scheme = "https"
	}
	for _, in := range cfg.instances() {
		name := in.name
		addr, err := e.driver.CreateProxy(ctx, name, "127.0.0.1:0", e.servers[name].Addr())
		if err != nil {
			return nil, fmt.Errorf("embedded environment: creating the Toxiproxy proxy for %s: %w", name, err)
		}
		e.proxies = append(e.proxies, name)
		svc := harness.Service{Name: name, BaseURL: scheme + "://" + addr}
		if e.ca != nil {
			svc.CAs, svc.CAPEM = e.ca.Pool(), e.ca.PEM()
		}
		if in.replica {
			e.replicas[in.service] = append(e.replicas[in.service], svc)
			continue
		}
		e.services = append(e.services, svc)
	}
	if len(e.replicas) > 0 {
		e.faults = replicaFaults{driver: e.driver, replicas: replicaNames(e.replicas)}
	}
	return e, nil
}

// Name is "embedded".
func (e *Embedded) Name() string { return "embedded" }

// Services lists the endpoints, through Toxiproxy, in fakeservers.Services
// order; a service WithReplicas runs as several is not among them (see
// Replicas).
func (e *Embedded) Services() []harness.Service { return slices.Clone(e.services) }

// Faults is the fault handle: the fault driver, which also applies an
// action naming a service run as replicas to each of them.
func (e *Embedded) Faults() harness.Faults { return e.faults }

// Driver is the fault driver itself, for what a scenario never does:
// creating proxies, reading their state, reaching an admin API.
func (e *Embedded) Driver() *FaultDriver { return e.driver }

// Seed is the seed the fake services were started with.
func (e *Embedded) Seed() int64 { return e.cfg.seed }

// ToxiproxyURL is the base URL of the in-process Toxiproxy API.
func (e *Embedded) ToxiproxyURL() string { return e.toxi.URL() }

// AdminURL is the admin API base URL of one fake service, "" when unknown.
func (e *Embedded) AdminURL(service string) string {
	if s, ok := e.servers[service]; ok {
		return s.AdminURL()
	}
	return ""
}

// UpstreamAddr is the host:port of one fake service itself, bypassing
// Toxiproxy ("" when unknown): for baselines and benchmarks only.
func (e *Embedded) UpstreamAddr(service string) string {
	if s, ok := e.servers[service]; ok {
		return s.Addr()
	}
	return ""
}

// CA is the CA every fake service's certificate is signed by; nil without TLS.
func (e *Embedded) CA() *fakeservers.CA { return e.ca }

// Observe reads one service's server-side truth through its admin API.
func (e *Embedded) Observe(ctx context.Context, service string) (fakeservers.Stats, error) {
	if err := e.known("observe", service); err != nil {
		return fakeservers.Stats{}, err
	}
	return observeAdmin(ctx, e.admins, service, e.cfg.callTimeout)
}

// OpenConnections reads one service's open server-side connections through
// the admin API's cheap counters endpoint; it makes Embedded a
// ConnectionCounter, so the samplers read it every sample.
func (e *Embedded) OpenConnections(ctx context.Context, service string) (int, error) {
	if err := e.known("open connections", service); err != nil {
		return 0, err
	}
	return openConnsAdmin(ctx, e.admins, service, e.cfg.callTimeout)
}

// CloseIdleConns has one service close every connection with no request in
// flight, through its admin API; it makes Embedded a harness.IdleConnCloser,
// so teardown can tell the client's idle pool from what it holds.
func (e *Embedded) CloseIdleConns(ctx context.Context, service string) (fakeservers.IdleClose, error) {
	if err := e.known("close idle connections", service); err != nil {
		return fakeservers.IdleClose{}, err
	}
	return closeIdleAdmin(ctx, e.admins, service, e.cfg.callTimeout)
}

// known refuses a service that is not one of the fake services, which the
// shared admin helpers would report as one without server truth.
func (e *Embedded) known(op, service string) error {
	if _, ok := e.admins[service]; !ok {
		return fmt.Errorf("%s %q: %w: want one of %v", op, service, harness.ErrUnknownService, e.driver.adminServices())
	}
	return nil
}

// Reset removes every toxic and HTTP fault, re-enables every proxy, restores
// the start keep-alive policy and makes each service forget its history.
func (e *Embedded) Reset(ctx context.Context, seed int64) error {
	return errors.Join(e.driver.Reset(ctx), resetAdmins(ctx, e.admins, seed, e.cfg.callTimeout))
}

// environmentFunctions are functions that appear only in the stacks of the
// embedded environment's own goroutines, found by dumping stacks while
// clients held live connections through every proxy (see
// TestGoroutineIgnoresLeaveOnlyClientGoroutines). None of them can appear in
// a client's goroutine unless the client runs an HTTP server itself.
var environmentFunctions = []string{
	// Toxiproxy: proxy accept loops, their shutdown helpers, and per
	// connection links and toxic stubs.
	"github.com/Shopify/toxiproxy/v2.(*Proxy).server",
	"github.com/Shopify/toxiproxy/v2.(*Proxy).freeBlocker",
	"github.com/Shopify/toxiproxy/v2.(*ToxicLink).read",
	"github.com/Shopify/toxiproxy/v2.(*ToxicLink).write",
	"github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run",
	// Toxiproxy's API: our serve loop and its per-request timeout handler.
	"github.com/poolproof/poolproof/harness/env.StartToxiproxy.func1",
	"net/http.(*timeoutHandler).ServeHTTP.func1",
	// Fault-driver calls still waiting on Toxiproxy's client.
	"github.com/poolproof/poolproof/harness/env.(*FaultDriver).toxiproxyCall.func1",
	// HTTP servers (fake services, admin APIs, Toxiproxy's API): accept
	// loops and server-side connections, HTTP/1 and HTTP/2.
	"net/http.(*Server).Serve",
	"net/http.(*conn).serve",
	"net/http.(*connReader).backgroundRead",
	"net/http.(*http2serverConn).serve",
	"net/http.(*http2serverConn).readFrames",
	"net/http.(*http2serverConn).runHandler",
	"net/http.(*http2serverConn).writeFrameAsync",
	// Fake services: the goroutine that waits for both serve loops, and the
	// idle-timeout timer callbacks.
	"github.com/poolproof/poolproof/fakeservers.(*Server).markServed",
	"github.com/poolproof/poolproof/fakeservers.(*trackedConn).onIdleTimer",
}

// environmentIgnores are the embedded environment's goroutine ignores plus
// the API gate's serve loop, for the docker and remote environments. They
// run their servers elsewhere, but the stacks are the same ones whenever
// servers do share the process (tests, the API gate), and no client under
// test runs them.
func environmentIgnores() []string {
	return append(slices.Clone(environmentFunctions), "github.com/poolproof/poolproof/harness/env.startAPIGate.func1")
}

// GoroutineIgnores tells the environment's own goroutines (fake services'
// servers, Toxiproxy's links and API, pending fault-driver calls) apart from
// the client's. The admin clients keep no idle connection between calls, so
// they leave no goroutine to tell apart.
func (e *Embedded) GoroutineIgnores() []string { return GoroutineIgnores() }

// GoroutineIgnores names the functions of the goroutines that fake
// services, Toxiproxy and the fault driver run in this process, for any
// environment (or test rig) that runs them here.
func GoroutineIgnores() []string { return slices.Clone(environmentFunctions) }

// Close deletes the proxies through Toxiproxy's API, stops Toxiproxy and the
// fake services, and releases the admin clients. It is idempotent and safe
// on a half-built environment.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		var errs []error
		if e.driver != nil && len(e.proxies) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*e.cfg.callTimeout)
			for _, name := range e.proxies {
				if err := e.driver.DeleteProxy(ctx, name); err != nil {
					errs = append(errs, err)
				}
			}
			cancel()
		}
		if e.toxi != nil {
			// Also stops any proxy the API could not delete.
			errs = append(errs, e.toxi.Close())
		}
		for _, c := range e.admins {
			c.Close()
		}
		for _, in := range e.cfg.instances() {
			name := in.name
			if s, ok := e.servers[name]; ok {
				if err := s.Close(); err != nil {
					errs = append(errs, fmt.Errorf("closing fake service %s: %w", name, err))
				}
			}
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}
