package env

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// ErrToxiproxyUnreachable is returned by NewRemote when the Toxiproxy API
// does not answer within the call timeout.
var ErrToxiproxyUnreachable = errors.New("toxiproxy API unreachable")

// ErrInvalidRemoteConfig is returned by NewRemote and RemoteConfigFromEnv
// for a configuration it cannot use; the message names the field.
var ErrInvalidRemoteConfig = errors.New("invalid remote config")

// Environment variables RemoteConfigFromEnv reads; <SERVICE> is the service
// name in upper case, e.g. POOLPROOF_UPSTREAM_PAYMENT.
const (
	EnvToxiproxyURL   = "POOLPROOF_TOXIPROXY_URL"
	EnvUpstreamPrefix = "POOLPROOF_UPSTREAM_"
	EnvAdminPrefix    = "POOLPROOF_ADMIN_"
	EnvCAFile         = "POOLPROOF_CA_FILE"
	EnvListenHost     = "POOLPROOF_LISTEN_HOST"
)

// RemoteConfig names an existing Toxiproxy and the services behind it.
type RemoteConfig struct {
	// ToxiproxyURL is the base URL of the Toxiproxy API, e.g.
	// "http://toxiproxy.staging:8474".
	ToxiproxyURL string
	// Upstreams maps each service (the proxy's name) to host:port as
	// Toxiproxy reaches it.
	Upstreams map[string]string
	// AdminURLs optionally maps services to the admin API base URL of a
	// poolproof fake service. Services without one are a team's real
	// services: Observe returns ErrNoServerTruth for them, so the checks
	// needing server truth are not applicable, and HTTP faults and
	// keep-alive changes fail.
	AdminURLs map[string]string
	// CAFile is a PEM file of the CA(s) the client must trust; with it the
	// services are reached over https, without it over http.
	CAFile string
	// ListenHost is where the proxies listen inside Toxiproxy's host and
	// the host the client dials to reach them (default: the host of
	// ToxiproxyURL).
	ListenHost string
	// CallTimeout bounds each Toxiproxy and admin call (default
	// DefaultCallTimeout); an unreachable Toxiproxy is reported within it.
	CallTimeout time.Duration
}

// RemoteConfigFromEnv reads POOLPROOF_TOXIPROXY_URL, POOLPROOF_UPSTREAM_<SERVICE>,
// POOLPROOF_ADMIN_<SERVICE>, POOLPROOF_CA_FILE and POOLPROOF_LISTEN_HOST.
func RemoteConfigFromEnv() (RemoteConfig, error) {
	return remoteConfigFrom(os.Environ())
}

func remoteConfigFrom(environ []string) (RemoteConfig, error) {
	cfg := RemoteConfig{Upstreams: map[string]string{}, AdminURLs: map[string]string{}}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch {
		case k == EnvToxiproxyURL:
			cfg.ToxiproxyURL = v
		case k == EnvCAFile:
			cfg.CAFile = v
		case k == EnvListenHost:
			cfg.ListenHost = v
		case strings.HasPrefix(k, EnvUpstreamPrefix) && len(k) > len(EnvUpstreamPrefix):
			cfg.Upstreams[strings.ToLower(strings.TrimPrefix(k, EnvUpstreamPrefix))] = v
		case strings.HasPrefix(k, EnvAdminPrefix) && len(k) > len(EnvAdminPrefix):
			cfg.AdminURLs[strings.ToLower(strings.TrimPrefix(k, EnvAdminPrefix))] = v
		}
	}
	if cfg.ToxiproxyURL == "" {
		return cfg, fmt.Errorf("%w: %s is not set: give the Toxiproxy API's base URL, e.g. http://127.0.0.1:8474", ErrInvalidRemoteConfig, EnvToxiproxyURL)
	}
	if len(cfg.Upstreams) == 0 {
		return cfg, fmt.Errorf("%w: no %s<SERVICE> is set: give host:port per service as Toxiproxy reaches it, e.g. %sPAYMENT=payment:8443", ErrInvalidRemoteConfig, EnvUpstreamPrefix, EnvUpstreamPrefix)
	}
	return cfg, nil
}

func (c *RemoteConfig) validate() (*url.URL, error) {
	u, err := url.Parse(c.ToxiproxyURL)
	if c.ToxiproxyURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: RemoteConfig.ToxiproxyURL %q: want http://host:port of the Toxiproxy API", ErrInvalidRemoteConfig, c.ToxiproxyURL)
	}
	if len(c.Upstreams) == 0 {
		return nil, fmt.Errorf("%w: RemoteConfig.Upstreams is empty: give host:port per service", ErrInvalidRemoteConfig)
	}
	for svc, up := range c.Upstreams {
		if svc == "" {
			return nil, fmt.Errorf("%w: RemoteConfig.Upstreams has an empty service name", ErrInvalidRemoteConfig)
		}
		if _, _, err := net.SplitHostPort(up); err != nil {
			return nil, fmt.Errorf("%w: RemoteConfig.Upstreams[%q] = %q: want host:port: %v", ErrInvalidRemoteConfig, svc, up, err)
		}
	}
	for svc := range c.AdminURLs {
		if _, ok := c.Upstreams[svc]; !ok {
			return nil, fmt.Errorf("%w: RemoteConfig.AdminURLs[%q] has no upstream: add it to Upstreams or drop it", ErrInvalidRemoteConfig, svc)
		}
	}
	if c.CallTimeout < 0 {
		return nil, fmt.Errorf("%w: RemoteConfig.CallTimeout %v: want a positive duration (0: default)", ErrInvalidRemoteConfig, c.CallTimeout)
	}
	return u, nil
}

// Remote is an environment on an existing Toxiproxy server and services (a
// staging cluster, or fake services started elsewhere). The client under
// test runs in this process.
type Remote struct {
	cfg      RemoteConfig
	gate     *apiGate
	driver   *FaultDriver
	admins   map[string]*fakeservers.AdminClient
	services []harness.Service
	created  []string // proxies this environment made; Close deletes only those

	closeOnce sync.Once
	closeErr  error
}

var (
	_ harness.Environment       = (*Remote)(nil)
	_ harness.ConnectionCounter = (*Remote)(nil)
	_ harness.IdleConnCloser    = (*Remote)(nil)
)

// NewRemote checks that Toxiproxy answers (ErrToxiproxyUnreachable within
// the call timeout otherwise), then creates one proxy per upstream, named
// after the service and listening on ListenHost:0. A proxy that already
// exists with the same upstream is reused (and left in place by Close);
// one with another upstream is an error wrapping ErrProxyExists.
func NewRemote(ctx context.Context, cfg RemoteConfig, opts ...Option) (_ *Remote, err error) {
	oc := newConfig(opts)
	if err := oc.only(NameRemote, optCallTimeout, optRemote); err != nil {
		return nil, err
	}
	if oc.set[optCallTimeout] {
		cfg.CallTimeout = oc.callTimeout
	}
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.ListenHost == "" {
		cfg.ListenHost = u.Hostname()
	}
	var (
		pool  *x509.CertPool
		caPEM []byte
	)
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: RemoteConfig.CAFile: %w", ErrInvalidRemoteConfig, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: RemoteConfig.CAFile %s holds no PEM certificate", ErrInvalidRemoteConfig, cfg.CAFile)
		}
		caPEM = pem
	}

	r := &Remote{cfg: cfg, admins: map[string]*fakeservers.AdminClient{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Close())
		}
	}()

	base := strings.TrimRight(cfg.ToxiproxyURL, "/")
	vctx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	err = toxiproxyVersion(vctx, base)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: %s (check RemoteConfig.ToxiproxyURL / %s, and that Toxiproxy runs): %w", ErrToxiproxyUnreachable, base, EnvToxiproxyURL, err)
	}
	// A remote Toxiproxy keeps connections alive; see apiGate.
	if r.gate, err = startAPIGate(base); err != nil {
		return nil, fmt.Errorf("remote environment: %w", err)
	}
	for svc, adminURL := range cfg.AdminURLs {
		r.admins[svc] = fakeservers.NewAdminClient(adminURL)
	}
	r.driver = NewFaultDriver(r.gate.URL(), r.admins, cfg.CallTimeout)

	scheme := "http"
	if pool != nil {
		scheme = "https"
	}
	for _, svc := range remoteServiceOrder(cfg.Upstreams) {
		listen, err := r.proxyFor(ctx, svc, cfg.Upstreams[svc])
		if err != nil {
			return nil, fmt.Errorf("remote environment: %w", err)
		}
		_, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("remote environment: proxy %q listens on %q: %w", svc, listen, err)
		}
		r.services = append(r.services, harness.Service{Name: svc, BaseURL: scheme + "://" + net.JoinHostPort(cfg.ListenHost, port), CAs: pool, CAPEM: caPEM})
	}
	return r, nil
}

// proxyFor creates the service's proxy, or reuses one with the same upstream.
func (r *Remote) proxyFor(ctx context.Context, svc, upstream string) (string, error) {
	listen, err := r.driver.CreateProxy(ctx, svc, net.JoinHostPort(r.cfg.ListenHost, "0"), upstream)
	if err == nil {
		r.created = append(r.created, svc)
		return listen, nil
	}
	if !errors.Is(err, harness.ErrProxyExists) {
		return "", fmt.Errorf("creating the Toxiproxy proxy for %s: %w", svc, err)
	}
	st, serr := r.driver.Proxy(ctx, svc)
	if serr != nil {
		return "", fmt.Errorf("reading the existing Toxiproxy proxy %s: %w", svc, serr)
	}
	if st.Upstream != upstream {
		return "", fmt.Errorf("%w: Toxiproxy proxy %q goes to %s, not %s: delete it or fix RemoteConfig.Upstreams[%q]", harness.ErrProxyExists, svc, st.Upstream, upstream, svc)
	}
	return st.Listen, nil
}

// remoteServiceOrder is the fake services first, in fakeservers.Services
// order, then any other service by name, so reports read the same way on
// every environment.
func remoteServiceOrder(upstreams map[string]string) []string {
	var out, rest []string
	for _, s := range fakeservers.Services {
		if _, ok := upstreams[s]; ok {
			out = append(out, s)
		}
	}
	for s := range upstreams {
		if !slices.Contains(fakeservers.Services, s) {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Name is "remote".
func (r *Remote) Name() string { return "remote" }

// Services lists the endpoints, through Toxiproxy.
func (r *Remote) Services() []harness.Service { return slices.Clone(r.services) }

// Faults is the fault driver. Its HTTP-fault and keep-alive actions fail
// with ErrNoServerTruth for services without an admin URL.
// Faults is the fault handle: the fault driver.
func (r *Remote) Faults() harness.Faults { return r.driver }

// Driver is the fault driver itself, for what a scenario never does:
// creating proxies, reading their state, reaching an admin API.
func (r *Remote) Driver() *FaultDriver { return r.driver }

// ToxiproxyURL is the Toxiproxy API as configured.
func (r *Remote) ToxiproxyURL() string { return strings.TrimRight(r.cfg.ToxiproxyURL, "/") }

// Created lists the proxies this environment created (and Close deletes).
func (r *Remote) Created() []string { return slices.Clone(r.created) }

// Observe reads one service's server-side truth through its admin API, or
// returns ErrNoServerTruth when it has none.
func (r *Remote) Observe(ctx context.Context, service string) (fakeservers.Stats, error) {
	if _, ok := r.cfg.Upstreams[service]; !ok {
		return fakeservers.Stats{}, fmt.Errorf("observe %q: %w: want one of %v", service, harness.ErrUnknownService, remoteServiceOrder(r.cfg.Upstreams))
	}
	return observeAdmin(ctx, r.admins, service, r.cfg.CallTimeout)
}

// OpenConnections reads one service's open server-side connections, or
// returns ErrNoServerTruth when it has no admin API.
func (r *Remote) OpenConnections(ctx context.Context, service string) (int, error) {
	if _, ok := r.cfg.Upstreams[service]; !ok {
		return 0, fmt.Errorf("open connections %q: %w: want one of %v", service, harness.ErrUnknownService, remoteServiceOrder(r.cfg.Upstreams))
	}
	return openConnsAdmin(ctx, r.admins, service, r.cfg.CallTimeout)
}

// CloseIdleConns has one service close every connection with no request in
// flight, or returns ErrNoServerTruth when it has no admin API (the leak
// checks then count every connection still open as held).
func (r *Remote) CloseIdleConns(ctx context.Context, service string) (fakeservers.IdleClose, error) {
	if _, ok := r.cfg.Upstreams[service]; !ok {
		return fakeservers.IdleClose{}, fmt.Errorf("close idle connections %q: %w: want one of %v", service, harness.ErrUnknownService, remoteServiceOrder(r.cfg.Upstreams))
	}
	return closeIdleAdmin(ctx, r.admins, service, r.cfg.CallTimeout)
}

// Reset removes every toxic and re-enables every proxy of the Toxiproxy
// server (Toxiproxy's reset is server-wide), and clears the HTTP faults and
// history of the services with an admin API.
func (r *Remote) Reset(ctx context.Context, seed int64) error {
	return errors.Join(r.driver.Reset(ctx), resetAdmins(ctx, r.admins, seed, r.cfg.CallTimeout))
}

// GoroutineIgnores: the servers run elsewhere; see environmentIgnores.
func (r *Remote) GoroutineIgnores() []string { return environmentIgnores() }

// Close deletes the proxies this environment created (never the ones it
// reused), stops the API gate and releases the admin clients. It is
// idempotent.
func (r *Remote) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		if r.driver != nil && len(r.created) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*r.cfg.CallTimeout)
			for _, name := range r.created {
				if err := r.driver.DeleteProxy(ctx, name); err != nil {
					errs = append(errs, err)
				}
			}
			cancel()
		}
		if r.gate != nil {
			errs = append(errs, r.gate.Close())
		}
		for _, c := range r.admins {
			c.Close()
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
