package pooledclient

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"time"
)

// Config is one downstream service's client: its pool, timeouts, retries and
// breaker. Zero durations mean "no limit" for the transport timeouts, like
// net/http; PoolWait zero means "never wait for a connection slot".
type Config struct {
	// Name is the service name, used in metrics labels and error messages.
	Name string
	// BaseURL (scheme://host:port) is where Warm dials; calls may use any URL.
	BaseURL string
	// WarmPath is requested with HEAD by Warm to open connections (default "/").
	WarmPath string
	// WarmInterval, when positive, re-runs Warm in the background so MinConns
	// stay open after idle timeouts and lifetime retirement.
	WarmInterval time.Duration

	// MinConns connections are pre-dialled by Warm.
	MinConns int
	// MaxConnsPerHost bounds the calls in flight and the connections open.
	MaxConnsPerHost int
	// MaxIdleConns bounds the idle connections kept for reuse.
	MaxIdleConns int
	// IdleTimeout closes connections idle for longer.
	IdleTimeout time.Duration
	// MaxLifetime retires connections older than this, without failing a call.
	MaxLifetime time.Duration

	ConnectTimeout        time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	// RequestTimeout bounds a whole logical call: pool wait, every attempt,
	// backoff sleeps and reading the response body.
	RequestTimeout time.Duration
	// PoolWait is how long a call may wait for a free connection slot before
	// failing with ErrPoolExhausted.
	PoolWait time.Duration

	// HTTP2 negotiates HTTP/2 over TLS; off means HTTP/1.1 only.
	HTTP2 bool
	// RootCAs is the CA pool to trust for https; nil means the system pool.
	RootCAs *x509.CertPool

	Retry   RetryConfig
	Breaker BreakerConfig
	// Seed seeds the backoff jitter, so a run can be replayed.
	Seed uint64
}

// Default service names.
const (
	Payment      = "payment"
	Inventory    = "inventory"
	Notification = "notification"
)

// DefaultConfigs returns the three reference services' configurations, each
// shaped by its role. BaseURL is left empty: set it before Warm.
//
//   - payment: critical and slow; few connections, a patient read timeout,
//     retries only for keyed requests (retry layer requires idempotency), a
//     breaker that needs a clear signal before it trips.
//   - inventory: high-frequency reads; many connections, short timeouts,
//     quick retries, a rate-based breaker.
//   - notification: high volume, fire-and-forget; short timeouts, a short
//     pool wait (drop rather than queue), a single retry.
func DefaultConfigs() []Config {
	return []Config{
		{
			Name: Payment, MinConns: 2, MaxConnsPerHost: 4, MaxIdleConns: 4,
			IdleTimeout: 90 * time.Second, MaxLifetime: 5 * time.Minute,
			ConnectTimeout: time.Second, TLSHandshakeTimeout: time.Second,
			ResponseHeaderTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second,
			PoolWait: time.Second,
			Retry: RetryConfig{
				MaxAttempts: 3, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second,
				Jitter: 1, MaxRetryAfter: 5 * time.Second, BudgetRatio: 0.1, BudgetMinPerSecond: 1,
			},
			Breaker: BreakerConfig{
				ConsecutiveFailures: 5, FailureRate: 0.5, Window: 30 * time.Second, MinCalls: 20,
				OpenDelay: 5 * time.Second, HalfOpenProbes: 1, ProbeSuccesses: 2,
			},
		},
		{
			Name: Inventory, MinConns: 4, MaxConnsPerHost: 32, MaxIdleConns: 32,
			IdleTimeout: 60 * time.Second, MaxLifetime: 2 * time.Minute,
			ConnectTimeout: 300 * time.Millisecond, TLSHandshakeTimeout: 500 * time.Millisecond,
			ResponseHeaderTimeout: 500 * time.Millisecond, RequestTimeout: time.Second,
			PoolWait: 100 * time.Millisecond,
			Retry: RetryConfig{
				MaxAttempts: 3, BaseBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				Jitter: 1, MaxRetryAfter: time.Second, BudgetRatio: 0.2, BudgetMinPerSecond: 10,
			},
			Breaker: BreakerConfig{
				ConsecutiveFailures: 20, FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 50,
				OpenDelay: time.Second, HalfOpenProbes: 3,
			},
		},
		{
			Name: Notification, MinConns: 2, MaxConnsPerHost: 16, MaxIdleConns: 16,
			IdleTimeout: 30 * time.Second, MaxLifetime: 2 * time.Minute,
			ConnectTimeout: 300 * time.Millisecond, TLSHandshakeTimeout: 500 * time.Millisecond,
			ResponseHeaderTimeout: 300 * time.Millisecond, RequestTimeout: 500 * time.Millisecond,
			PoolWait: 20 * time.Millisecond,
			Retry: RetryConfig{
				MaxAttempts: 2, BaseBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
				Jitter: 1, MaxRetryAfter: 200 * time.Millisecond, BudgetRatio: 0.1, BudgetMinPerSecond: 5,
			},
			Breaker: BreakerConfig{
				ConsecutiveFailures: 10, FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 100,
				OpenDelay: 2 * time.Second, HalfOpenProbes: 2,
			},
		},
	}
}

// DefaultConfig returns the default configuration of one reference service,
// pointed at baseURL and trusting cas (nil for plain HTTP or the system pool).
func DefaultConfig(name, baseURL string, cas *x509.CertPool) (Config, error) {
	for _, c := range DefaultConfigs() {
		if c.Name == name {
			c.BaseURL, c.RootCAs = baseURL, cas
			return c, c.Validate()
		}
	}
	return Config{}, fmt.Errorf("pooledclient: %q: %w: there are defaults for %s, %s and %s only; build a Config by hand",
		name, ErrUnknownService, Payment, Inventory, Notification)
}

// Validate refuses a configuration that cannot work, naming the field.
func (c Config) Validate() error {
	name := c.Name
	if name == "" {
		name = "<unnamed>"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("pooledclient: %s: "+format+": %w", append(append([]any{name}, args...), ErrInvalidConfig)...)
	}
	if c.Name == "" {
		return bad("Name is empty; name the service")
	}
	for _, f := range []struct {
		field string
		v     int
	}{{"MinConns", c.MinConns}, {"MaxIdleConns", c.MaxIdleConns}, {"Retry.MaxAttempts", c.Retry.MaxAttempts},
		{"Retry.BudgetMinPerSecond", c.Retry.BudgetMinPerSecond}, {"Breaker.ConsecutiveFailures", c.Breaker.ConsecutiveFailures},
		{"Breaker.MinCalls", c.Breaker.MinCalls}, {"Breaker.WindowBuckets", c.Breaker.WindowBuckets},
		{"Breaker.HalfOpenProbes", c.Breaker.HalfOpenProbes}, {"Breaker.ProbeSuccesses", c.Breaker.ProbeSuccesses}} {
		if f.v < 0 {
			return bad("%s (%d) is negative", f.field, f.v)
		}
	}
	for _, f := range []struct {
		field string
		v     time.Duration
	}{{"WarmInterval", c.WarmInterval}, {"IdleTimeout", c.IdleTimeout}, {"MaxLifetime", c.MaxLifetime},
		{"ConnectTimeout", c.ConnectTimeout}, {"TLSHandshakeTimeout", c.TLSHandshakeTimeout},
		{"ResponseHeaderTimeout", c.ResponseHeaderTimeout}, {"RequestTimeout", c.RequestTimeout},
		{"PoolWait", c.PoolWait}, {"Retry.BaseBackoff", c.Retry.BaseBackoff}, {"Retry.MaxBackoff", c.Retry.MaxBackoff},
		{"Retry.MaxRetryAfter", c.Retry.MaxRetryAfter}, {"Breaker.Window", c.Breaker.Window},
		{"Breaker.OpenDelay", c.Breaker.OpenDelay}} {
		if f.v < 0 {
			return bad("%s (%s) is negative", f.field, f.v)
		}
	}
	if c.MaxConnsPerHost <= 0 {
		return bad("MaxConnsPerHost (%d) must be positive: it bounds the pool", c.MaxConnsPerHost)
	}
	if c.MinConns > c.MaxConnsPerHost {
		return bad("MinConns (%d) above MaxConnsPerHost (%d)", c.MinConns, c.MaxConnsPerHost)
	}
	if c.MinConns > c.MaxIdleConns {
		return bad("MinConns (%d) above MaxIdleConns (%d): warm connections would be dropped", c.MinConns, c.MaxIdleConns)
	}
	if c.MinConns > 0 && c.BaseURL == "" {
		return bad("MinConns (%d) needs BaseURL to know where to dial", c.MinConns)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("BaseURL %q is not an http(s)://host:port URL", c.BaseURL)
		}
	}
	if c.Retry.MaxBackoff > 0 && c.Retry.BaseBackoff > c.Retry.MaxBackoff {
		return bad("Retry.BaseBackoff (%s) above Retry.MaxBackoff (%s)", c.Retry.BaseBackoff, c.Retry.MaxBackoff)
	}
	if c.Retry.Jitter < 0 || c.Retry.Jitter > 1 {
		return bad("Retry.Jitter (%g) must be within [0, 1]", c.Retry.Jitter)
	}
	if c.Retry.BudgetRatio < 0 {
		return bad("Retry.BudgetRatio (%g) is negative", c.Retry.BudgetRatio)
	}
	if c.Breaker.FailureRate < 0 || c.Breaker.FailureRate > 1 {
		return bad("Breaker.FailureRate (%g) must be within [0, 1]", c.Breaker.FailureRate)
	}
	if c.Breaker.FailureRate > 0 && c.Breaker.Window <= 0 {
		return bad("Breaker.FailureRate (%g) needs a positive Breaker.Window", c.Breaker.FailureRate)
	}
	if !c.Breaker.Disabled && c.Breaker.ConsecutiveFailures == 0 && c.Breaker.FailureRate == 0 {
		return bad("Breaker has neither ConsecutiveFailures nor FailureRate; set one or Breaker.Disabled")
	}
	return nil
}
