package harness

import (
	"cmp"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

// Client is what poolproof drives; *http.Client satisfies it. If the client
// also has CloseIdleConnections() or Close() error, the harness calls them at
// teardown.
type Client interface {
	Do(*http.Request) (*http.Response, error)
}

// ClientFactory builds the client under test for one service.
type ClientFactory func(svc Service) (Client, error)

// ErrClientGone is wrapped by the error of a call that the client could
// not serve because it can serve none any more: the driver process it
// runs in died or broke the protocol. Every later call would fail the same
// way at once, so the runner ends the workload at the first such error
// instead of recording a flood of identical failures.
var ErrClientGone = errors.New("the client is gone")

// Service is what a client factory needs to reach one fake service.
type Service struct {
	Name    string         // "payment", "inventory" or "notification"
	BaseURL string         // scheme://host:port of the service, through Toxiproxy
	CAs     *x509.CertPool // the CA to trust for BaseURL; nil when the service is plain HTTP
	// CAPEM is the same CA as CAs, PEM encoded: a client that is not Go
	// (a driver) is handed it as a file. Nil when the service is plain
	// HTTP.
	CAPEM []byte
}

// Contract is what a team declares about its client for one service. The
// checks hold the client to it, plus the universal invariants (no leak, no
// hang, no duplicate charge, bounded retries).
type Contract struct {
	// MaxConns is the most connections the client opens to the service at once.
	MaxConns int `json:"max_conns"`
	// MaxInFlight is the most calls the client has in flight to the service
	// at once, which on HTTP/2 share few connections; 0: not declared (on
	// HTTP/1.1 MaxConns bounds it anyway, one call per connection).
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// PoolWait is how long a call may wait for a free connection before it
	// fails fast, over all its attempts.
	PoolWait time.Duration `json:"pool_wait"`
	// RequestTimeout bounds one logical call, retries and body read included.
	RequestTimeout time.Duration `json:"request_timeout"`
	// AttemptPoolWait is how long one attempt may wait for a free
	// connection, for a client whose pool wait restarts with every retry.
	// When PoolWait is zero, a call may wait MaxAttempts x AttemptPoolWait
	// (the checks add their margin, which covers the backoff between
	// attempts); a declared PoolWait bounds the call whatever this says, so
	// leave it zero (a contract copied from DefaultContract has it set).
	AttemptPoolWait time.Duration `json:"attempt_pool_wait,omitempty"`
	// AttemptTimeout bounds one attempt, for a client whose timeout restarts
	// with every retry. When RequestTimeout is zero, a call may last
	// MaxAttempts x AttemptTimeout (plus the checks' margin, which covers the
	// backoff between attempts); a declared RequestTimeout bounds the call
	// whatever this says, so leave it zero to be held to the attempts.
	AttemptTimeout time.Duration `json:"attempt_timeout,omitempty"`
	// MaxAttempts bounds the attempts of one logical call (1 = no retries).
	MaxAttempts int `json:"max_attempts"`
	// BackoffBase is the delay before the first retry, before jitter (a
	// fully jittered backoff draws each delay in [0, base x 2^n)); the
	// retries' median gap is held to at least a quarter of it. 0: not
	// declared (the gap must only show the client waits at all).
	BackoffBase time.Duration `json:"backoff_base,omitempty"`
	// BackoffMultiplier is how much each delay grows over the one before
	// (before the cap and jitter); 0 means 2 when BackoffBase is declared.
	// retry.backoff_grows holds the retries' second gaps to it.
	BackoffMultiplier float64 `json:"backoff_multiplier,omitempty"`
	// BackoffCap is the longest delay between two attempts, before jitter
	// (0: not declared). It slows the growth retry.backoff_grows expects.
	BackoffCap time.Duration `json:"backoff_cap,omitempty"`
	// BackoffJitter is the share of each delay drawn at random: 1 is full
	// jitter (uniform in [0, delay]), 0.5 equal jitter (uniform in
	// [delay/2, delay]), 0 none (not declared). retry.jitter holds calls
	// that fail together to first retries that far apart, from 0.25 on.
	BackoffJitter float64 `json:"backoff_jitter,omitempty"`
	// MaxRetryAfter is the longest Retry-After the client waits for before
	// a retry; a longer one is handed back to the caller at once (0: the
	// request timeout). retry.attempts_used expects a 429 asking for no
	// longer, with time left before the call's deadline, to be retried.
	MaxRetryAfter time.Duration `json:"max_retry_after,omitempty"`
	// RetryBudget is the share of calls the client may retry, sustained
	// (a retry budget, e.g. 0.2: one retry per five calls, as Finagle's
	// retry budget or gRPC's retry throttling); 0: none, every retryable
	// answer is retried while attempts and time are left. A client that
	// stops early once its budget is spent must declare it, or
	// retry.attempts_used fails it for giving up with attempts left; goodput
	// then expects under a fault only the calls the budget can retry to be
	// saved.
	RetryBudget float64 `json:"retry_budget,omitempty"`
	// BreakerOpenDelay is how long the breaker stays open before it probes;
	// zero when the client has no breaker.
	BreakerOpenDelay time.Duration `json:"breaker_open_delay"`
	// RecoveryTime bounds how long after a fault clears the client is healthy again.
	RecoveryTime time.Duration `json:"recovery_time"`
	// HalfOpenProbes is the most attempts the breaker lets through at once
	// while half-open (default 3); the breaker checks hold the attempts that
	// reach the server during an outage to it.
	HalfOpenProbes int `json:"half_open_probes,omitempty"`
	// MaxConnLifetime is the oldest a connection may be when a request
	// starts on it: the client retires older ones, so that traffic follows
	// a load balancer that rotates its backends. 0: not declared (the
	// lifetime check is then not applicable).
	MaxConnLifetime time.Duration `json:"max_conn_lifetime,omitempty"`
	// IdleTimeout is how long the client keeps a connection that carries
	// no request before it closes it. 0: not declared (the idle-timeout
	// check is then not applicable).
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// ConnectTimeout is the longest one new connection may take to become
	// usable: the TCP connect and the TLS handshake together (with separate
	// dial and handshake timeouts, their sum). A call whose connections
	// never complete fails within MaxAttempts x (it + the backoff between
	// attempts), plus its pool wait, and never later than RequestTimeout.
	// 0: not declared (the connect-timeout check is then not applicable).
	ConnectTimeout time.Duration `json:"connect_timeout,omitempty"`
}

// Profile is the contract a team claims for its client, per service.
type Profile struct {
	// HTTP2 declares that the client speaks HTTP/2 where a service offers
	// it. Every scenario is then certified twice: on HTTP/1.1 (what Python
	// and Node clients and proxies' upstreams speak, and where pool bugs
	// show) and on HTTP/2, as "<scenario>@h2". Without it the services
	// offer HTTP/1.1 only.
	HTTP2 bool `json:"http2,omitempty"`
	// Default applies to every service not named in Services.
	Default Contract `json:"default"`
	// Services overrides Default per service name.
	Services map[string]Contract `json:"services,omitempty"`
}

// DefaultContract is what a team that declares nothing is held to: the
// universal invariants only (no leak, no hang, no duplicate charge, a pool
// never larger than its callers, retries bounded by UniversalMaxAttempts).
// The checks of promises it did not make (a request timeout, fail-fast
// under exhaustion, a breaker, a retry policy) are not applicable, each
// saying which field to declare. Its only values fill the fields a
// recovery and a declared breaker are judged by.
var DefaultContract = Contract{
	RecoveryTime:   3 * time.Second,
	HalfOpenProbes: 3,
}

// Bounds a client that declares nothing is held to.
const (
	// UniversalMaxAttempts bounds the server attempts of one call when
	// MaxAttempts is not declared: a client that retries at all stops.
	UniversalMaxAttempts = 5
	// UndeclaredWatchdog is how long a call may take before it counts as
	// hung when no RequestTimeout is declared.
	UndeclaredWatchdog = 10 * time.Second
)

// DefaultProfile returns a profile with DefaultContract for every service.
func DefaultProfile() Profile { return Profile{Default: DefaultContract} }

// For returns the contract for one service: a zero PoolWait or
// RequestTimeout derived from its per-attempt bound when one is declared,
// RecoveryTime and HalfOpenProbes filled from DefaultContract when zero;
// every other zero field means "not declared".
func (p Profile) For(service string) Contract {
	c, ok := p.Services[service]
	if !ok {
		c = p.Default
	}
	return c.withCallBounds().withDefaults()
}

// withCallBounds derives the per-call bounds a contract leaves zero from
// its per-attempt ones, before the defaults fill them: a retrying client
// that declares only a per-attempt bound is held to its attempts, not to
// nothing. An undeclared MaxAttempts counts as one attempt.
func (c Contract) withCallBounds() Contract {
	attempts := time.Duration(max(1, c.MaxAttempts))
	if c.PoolWait == 0 && c.AttemptPoolWait > 0 {
		c.PoolWait = attempts * c.AttemptPoolWait
	}
	if c.RequestTimeout == 0 && c.AttemptTimeout > 0 {
		c.RequestTimeout = attempts * c.AttemptTimeout
	}
	return c
}

func (c Contract) withDefaults() Contract {
	d := DefaultContract
	c.RecoveryTime = cmp.Or(c.RecoveryTime, d.RecoveryTime)
	c.HalfOpenProbes = cmp.Or(c.HalfOpenProbes, d.HalfOpenProbes)
	return c
}
