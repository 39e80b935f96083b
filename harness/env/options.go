package env

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Option configures an environment. One set of options serves every
// environment; an option an environment cannot honour (a server-side
// latency on a remote one) is refused with its name, never ignored.
type Option func(*config)

type latencyJitter struct{ latency, jitter time.Duration }

// config is every option's target. set records which options were given,
// so that each environment can refuse the ones it does not support.
type config struct {
	set map[string]bool

	seed        int64
	tls         bool
	http2       bool
	latency     map[string]latencyJitter
	keepAlive   map[string]fakeservers.KeepAlive
	callTimeout time.Duration
	replicas    map[string]int // WithReplicas: replicas by service

	toxiproxyImage string
	binary         string
	startTimeout   time.Duration
	log            io.Writer
	// afterStart is a test hook called after each container started.
	afterStart func(runID, name string)

	remote *RemoteConfig
}

func newConfig(opts []Option) config {
	c := config{
		set:          map[string]bool{},
		seed:         harness.DefaultSeed,
		tls:          true,
		http2:        true,
		latency:      map[string]latencyJitter{},
		keepAlive:    map[string]fakeservers.KeepAlive{},
		callTimeout:  DefaultCallTimeout,
		startTimeout: 30 * time.Second,
		log:          io.Discard,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// only refuses every option given that the environment does not support.
func (c *config) only(envName string, supported ...string) error {
	var bad []string
	for name := range c.set {
		if !slices.Contains(supported, name) {
			bad = append(bad, name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("%s environment: %s not supported here: leave it out (it supports %s)",
		envName, strings.Join(bad, ", "), strings.Join(supported, ", "))
}

func (c *config) validate(envName string) error {
	for svc := range c.latency {
		if !slices.Contains(fakeservers.Services, svc) {
			return fmt.Errorf("%s environment: WithServiceLatency(%q): %w: want one of %v", envName, svc, harness.ErrUnknownService, fakeservers.Services)
		}
	}
	for svc := range c.keepAlive {
		if !slices.Contains(fakeservers.Services, svc) {
			return fmt.Errorf("%s environment: WithServiceKeepAlive(%q): %w: want one of %v", envName, svc, harness.ErrUnknownService, fakeservers.Services)
		}
	}
	if c.callTimeout <= 0 {
		return fmt.Errorf("%s environment: WithCallTimeout(%v): want a positive duration", envName, c.callTimeout)
	}
	if c.startTimeout <= 0 {
		return fmt.Errorf("%s environment: WithStartTimeout(%v): want a positive duration", envName, c.startTimeout)
	}
	return nil
}

func option(name string, f func(*config)) Option {
	return func(c *config) { c.set[name] = true; f(c) }
}

// Option names, as errors print them.
const (
	optSeed           = "WithSeed"
	optTLS            = "WithTLS"
	optHTTP2          = "WithHTTP2"
	optLatency        = "WithServiceLatency"
	optKeepAlive      = "WithKeepAlive"
	optCallTimeout    = "WithCallTimeout"
	optToxiproxyImage = "WithToxiproxyImage"
	optBinary         = "WithPoolproofBinary"
	optStartTimeout   = "WithStartTimeout"
	optLog            = "WithLog"
	optRemote         = "WithRemote"
	optAfterStart     = "afterStart"
)

// WithSeed seeds the fake services' fault draws and jitter until the first
// Reset, which reseeds them with the run's seed. Service i of
// fakeservers.Services gets seed+i, so services draw independently yet a
// run with the same seed replays.
func WithSeed(seed int64) Option { return option(optSeed, func(c *config) { c.seed = seed }) }

// WithTLS turns TLS on the fake services on (the default) or off.
func WithTLS(on bool) Option { return option(optTLS, func(c *config) { c.tls = on }) }

// WithHTTP2 allows (the default) or forbids HTTP/2, negotiated by ALPN when
// TLS is on. Plain HTTP is always HTTP/1.1.
func WithHTTP2(on bool) Option { return option(optHTTP2, func(c *config) { c.http2 = on }) }

// WithServiceLatency gives one service a base handling latency ± jitter on
// the server side, before any fault or toxic.
func WithServiceLatency(service string, latency, jitter time.Duration) Option {
	return option(optLatency, func(c *config) { c.latency[service] = latencyJitter{latency, jitter} })
}

// WithKeepAlive sets the keep-alive policy of every service; it is also what
// Reset restores.
func WithKeepAlive(ka fakeservers.KeepAlive) Option {
	return option(optKeepAlive, func(c *config) {
		for _, svc := range fakeservers.Services {
			c.keepAlive[svc] = ka
		}
	})
}

// WithServiceKeepAlive sets the keep-alive policy of one service; it is also
// what Reset restores.
func WithServiceKeepAlive(service string, ka fakeservers.KeepAlive) Option {
	return option(optKeepAlive, func(c *config) { c.keepAlive[service] = ka })
}

// WithCallTimeout bounds each fault-driver and admin call (default
// DefaultCallTimeout).
func WithCallTimeout(d time.Duration) Option {
	return option(optCallTimeout, func(c *config) { c.callTimeout = d })
}

// WithToxiproxyImage runs Toxiproxy from image (e.g. the official
// "ghcr.io/shopify/toxiproxy:2.12.0") instead of the one built from
// docker/toxiproxy.Dockerfile; the image must be pullable or present.
func WithToxiproxyImage(image string) Option {
	return option(optToxiproxyImage, func(c *config) { c.toxiproxyImage = image })
}

// WithPoolproofBinary puts the static linux poolproof binary at path into
// the images instead of building one with `go build` (e.g. in CI, where the
// binary is built once and outside any Go module).
func WithPoolproofBinary(path string) Option {
	return option(optBinary, func(c *config) { c.binary = path })
}

// WithStartTimeout bounds how long a docker environment waits for its
// started containers to answer (default 30s); the context bounds the whole
// start.
func WithStartTimeout(d time.Duration) Option {
	return option(optStartTimeout, func(c *config) { c.startTimeout = d })
}

// WithLog sends the image build output and testcontainers' own log lines to
// w (default: discarded).
func WithLog(w io.Writer) Option { return option(optLog, func(c *config) { c.log = w }) }

// WithRemote names the Toxiproxy and services a remote environment uses,
// instead of the POOLPROOF_* variables RemoteConfigFromEnv reads.
func WithRemote(cfg RemoteConfig) Option {
	return option(optRemote, func(c *config) { c.remote = &cfg })
}

// withAfterStart is a test hook: fn runs after each container started.
func withAfterStart(fn func(runID, name string)) Option {
	return option(optAfterStart, func(c *config) { c.afterStart = fn })
}
