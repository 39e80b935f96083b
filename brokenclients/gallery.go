package brokenclients

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/pooledclient"
)

// ErrUnknownClient is wrapped by Lookup when no gallery client has the name.
var ErrUnknownClient = errors.New("unknown broken client")

// Entry is one broken client of the gallery.
type Entry struct {
	Name     string   // kebab-case, e.g. "new-client-per-request"
	Bug      string   // one sentence a user understands: what is wrong and what it costs in production
	CaughtBy []string // ids of the checks that must catch it
	Factory  func(harness.Service) (harness.Client, error)
	// Profile is the contract the client declares and is held to:
	// Profile() for the pooled ones, PlainProfile() for the plain ones.
	Profile harness.Profile
}

// All returns the gallery, in a stable order. Every call builds fresh
// entries: the clients one entry's Factory builds may share state, as the
// clients of one program do (shared-pool-across-services' bug is exactly
// that), but two calls of All share nothing.
func All() []Entry {
	entries := []Entry{
		{
			Name: "new-client-per-request",
			Bug: "builds a new client (transport, pool and breaker) for every call and never closes it: " +
				"every call pays a fresh TCP and TLS handshake, and the idle connections and their goroutines pile up until the process runs out of file descriptors",
			CaughtBy: []string{check.IDPoolChurn, check.IDLeakFDs, check.IDLeakGoroutines},
			Factory:  newClientPerRequest,
		},
		{
			Name: "body-not-read-to-eof",
			Bug: "treats the first half of each response body as all of it and closes the rest unread: " +
				"callers act on truncated data, and every call throws its connection away instead of reusing it",
			CaughtBy: []string{check.IDIntegrityDigest, check.IDPoolChurn},
			Factory:  newBodyNotReadToEOF,
		},
		{
			Name: "retry-bodies-not-closed",
			Bug: "retries 5xx answers itself but never closes the bodies of the answers it throws away: " +
				"each retried call leaks a connection and its goroutines until the pool is exhausted",
			CaughtBy: []string{check.IDLeakServerConns, check.IDLeakGoroutines},
			Factory:  newRetryBodiesNotClosed,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "no-timeouts",
			Bug: "sets no timeout anywhere (connect, TLS handshake, response headers, whole call): " +
				"one slow or silent server holds callers and connections for as long as it likes",
			CaughtBy: []string{check.IDNoHang, check.IDTimeoutRequestBound},
			Factory:  newNoTimeouts,
		},
		{
			Name: "unbounded-pool",
			Bug: "puts no limit on connections per host: under load or a slow server it opens a connection " +
				"for every call in flight, overwhelming the server and exhausting file descriptors",
			CaughtBy: []string{check.IDPoolBound},
			Factory:  newUnboundedPool,
		},
		{
			Name: "unbounded-queue",
			Bug: "bounds its pool but lets a call wait for a free connection as long as the whole request timeout " +
				"(net/http's default is forever): when the pool is exhausted calls queue up instead of failing fast, and latency explodes",
			CaughtBy: []string{check.IDPoolExhaustion},
			Factory:  newUnboundedQueue,
		},
		{
			Name: "retries-without-backoff",
			Bug: "retries failed calls immediately, up to 10 times, with no backoff and no retry budget: " +
				"a struggling server gets a retry storm instead of room to recover",
			CaughtBy: []string{check.IDRetryAttempts, check.IDRetryBackoff},
			Factory:  newRetriesWithoutBackoff,
		},
		{
			Name: "retries-unsafe-post",
			Bug: "retries a POST that carries no Idempotency-Key after a connection error or a 5xx: " +
				"when the server processed the first attempt, the customer is charged twice",
			CaughtBy: []string{check.IDLedgerNoDuplicate},
			Factory:  newRetriesUnsafePost,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "retry-after-ignored",
			Bug: "retries a 429 after its own short backoff, ignoring the server's Retry-After: " +
				"it hammers a server that asked it to slow down and gets throttled harder",
			CaughtBy: []string{check.IDRetryAfter},
			Factory:  newRetryAfterIgnored,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "breaker-never-half-opens",
			Bug: "has a circuit breaker that opens and never lets a probe through again: " +
				"after one outage the service stays cut off until the process restarts",
			CaughtBy: []string{check.IDBreakerRecovers},
			Factory:  newBreakerNeverHalfOpens,
		},
		{
			Name: "half-open-admits-all",
			Bug: "has a circuit breaker whose half-open state admits every call instead of a few probes: " +
				"the moment the open delay ends, the full load hits a service that may still be down",
			CaughtBy: []string{check.IDBreakerHalfOpen},
			Factory:  newHalfOpenAdmitsAll,
		},
		{
			Name: "goroutine-per-call",
			Bug: "starts a goroutine per call to report its latency on a channel nobody reads: " +
				"every call leaks a blocked goroutine and its memory until the process dies",
			CaughtBy: []string{check.IDLeakGoroutines},
			Factory:  newGoroutinePerCall,
		},
		{
			Name: "no-circuit-breaker",
			Bug: "has no circuit breaker (while its contract declares one): during an outage every call still goes to the failing service, " +
				"retries included, so the service gets no room to recover and callers wait for errors instead of failing fast",
			CaughtBy: []string{check.IDBreakerOpens},
			Factory:  newNoCircuitBreaker,
		},
		{
			Name: "shared-pool-across-services",
			Bug: "caps its calls in flight with one pool shared by the clients of every service instead of one per service: " +
				"when one service hangs, its stuck calls take every slot and calls to the healthy services fail too",
			CaughtBy: []string{check.IDIsolation},
			Factory:  sharedPoolFactory(),
		},
		{
			Name: "backoff-never-resets",
			Bug: "slows itself down after failed calls (a client-wide delay that doubles with each failure) but never resets the delay " +
				"once calls succeed again: after one outage every call to the service waits for good, and its throughput never comes back",
			CaughtBy: []string{check.IDRecoveryLatency, check.IDRecoveryThroughput},
			Factory:  newBackoffNeverResets,
		},
		{
			Name: "small-idle-pool",
			Bug: "may open 16 connections but keeps only 2 idle (http.Transport's default MaxIdleConnsPerHost): with more callers than that, " +
				"every connection beyond the second is closed when its call ends and dialled again for the next, a TCP and TLS handshake per call",
			CaughtBy: []string{check.IDPoolChurn},
			Factory:  newSmallIdlePool,
			Profile:  PlainProfile(),
		},
		{
			Name: "no-connection-limit",
			Bug: "sets no connection limit (MaxConnsPerHost 0) while declaring 16: when calls pile up behind a slow service it opens one connection per caller " +
				"and hands the service all the load it was meant to shield it from",
			CaughtBy: []string{check.IDPoolBound},
			Factory:  newNoConnectionLimit,
			Profile:  PlainProfile(),
		},
		{
			Name: "cancel-before-body",
			Bug: "cancels each call's context as soon as the response headers arrive (a `defer cancel()` in a helper that returns the response), " +
				"before the caller reads the body: the read fails, and every call costs a new connection",
			CaughtBy: []string{check.IDPoolChurn},
			Factory:  newCancelBeforeBody,
			Profile:  PlainProfile(),
		},
		{
			Name: "swapped-pool-gauges",
			Bug: "reports its pool metrics with the active and idle connection gauges wired to each other's counter: " +
				"dashboards show an idle pool while every connection is busy, and alerts on pool saturation never fire",
			CaughtBy: []string{check.IDMetricsTruthful},
			Factory:  newSwappedPoolGauges,
		},
		{
			Name: "attempt-deadline-cuts-body",
			Bug: "puts a 10ms deadline (sized from a quiet benchmark) on each call that stays armed while the caller reads the body, though it declares 2s: " +
				"a body that arrives in fragments, or on a loaded host, is cut mid-read and calls fail without any fault",
			CaughtBy: []string{check.IDGoodput},
			Factory:  newAttemptDeadlineCutsBody,
			Profile:  PlainProfile(),
		},
		{
			Name: "breaker-trips-on-noise",
			Bug: "trips its circuit breaker after two failures in a row or at a 10% failure rate, below what a healthy service's ordinary errors reach: " +
				"a service failing one attempt in five, which its retries would absorb, is cut off and nearly every call rejected",
			CaughtBy: []string{check.IDGoodput},
			Factory:  newBreakerTripsOnNoise,
		},
		{
			Name: "retry-sleep-ignores-context",
			Bug: "sleeps between retries (and out a server's Retry-After) with time.Sleep instead of watching the call's context: " +
				"a caller whose deadline passes or who cancels still waits out the whole sleep, and its own caller's timeout with it",
			CaughtBy: []string{check.IDCallerDeadline},
			Factory:  newRetrySleepIgnoresContext,
		},
		{
			Name: "idle-conns-kept",
			Bug: "declares an idle timeout but leaves its transport's IdleConnTimeout at zero, so idle connections are never closed: " +
				"they hold the server's slots between bursts and meet connections a load balancer or NAT has silently dropped",
			CaughtBy: []string{check.IDPoolIdleTimeout},
			Factory:  newIdleConnsKept,
			Profile:  poolParamsProfile(harness.Contract{IdleTimeout: brokenIdleTimeout}),
		},
		{
			Name: "conns-live-forever",
			Bug: "declares a max connection lifetime but never retires a connection: " +
				"behind a load balancer that rotates its backends, its traffic stays on the backends it first reached",
			CaughtBy: []string{check.IDPoolLifetime},
			Factory:  newConnsLiveForever,
			Profile:  poolParamsProfile(harness.Contract{MaxConnLifetime: brokenMaxLifetime}),
		},
		{
			Name: "detached-requests",
			Bug: "runs each request on a context detached from the caller's and returns when the caller gives up, leaving the request running (and no limit on connections): " +
				"behind a slow upstream every call given up leaves work at the server, so its load and the client's goroutines grow with each timeout",
			CaughtBy: []string{check.IDAbandonedWork},
			Factory:  newDetachedRequests,
			Profile:  PlainProfile(),
		},
		{
			Name: "connect-timeout-unset",
			Bug: "declares a 300ms connect timeout but leaves its dialer's Timeout and its transport's TLSHandshakeTimeout at zero: " +
				"when a backend accepts TCP and never completes the handshake, every call waits out the whole request timeout instead",
			CaughtBy: []string{check.IDTimeoutConnect},
			Factory:  newConnectTimeoutUnset,
			Profile:  connectTimeoutProfile(),
		},
	}
	entries = append(entries, retryOracleEntries()...)
	for i := range entries {
		if entries[i].Profile.Default == (harness.Contract{}) && entries[i].Profile.Services == nil {
			entries[i].Profile = Profile()
		}
	}
	return entries
}

// Lookup returns the gallery client with name.
func Lookup(name string) (Entry, error) {
	all := All()
	names := make([]string, len(all))
	for i, e := range all {
		if e.Name == name {
			return e, nil
		}
		names[i] = e.Name
	}
	return Entry{}, fmt.Errorf("brokenclients: %q: %w; choose one of %s", name, ErrUnknownClient, strings.Join(names, ", "))
}

// Reference settings every gallery client starts from; they honour
// Contract, so that a gallery client held to Profile fails only the checks
// its bug breaks.
const (
	refMaxConns       = 16
	refPoolWait       = 250 * time.Millisecond
	refRequestTimeout = 2 * time.Second
	refMaxAttempts    = 3
	refBaseBackoff    = 50 * time.Millisecond
	refMaxBackoff     = 500 * time.Millisecond
	refJitter         = 0.5 // equal jitter
	refRetryBudget    = 0.2 // a retry per five calls, sustained
	refMaxRetryAfter  = 2 * time.Second
	refTripAfter      = 5 // consecutive failures
	refOpenDelay      = time.Second
	refHalfOpenProbes = 1
	// refConnectTimeout is ReferenceConfig's 1s dial timeout + 1s TLS
	// handshake timeout: a new connection is usable, or given up, within it.
	refConnectTimeout = 2 * time.Second
)

// Contract is what every gallery client declares: the promises of the
// reference settings it starts from (16 connections, a 250ms pool wait, a
// 2s request timeout, 3 attempts within a retry budget of 0.2 retries per call, with a
// backoff from 50ms doubling up to 500ms with equal jitter, a breaker with a 1s open delay,
// recovery within 3s).
var Contract = harness.Contract{
	MaxConns:         refMaxConns,
	PoolWait:         refPoolWait,
	RequestTimeout:   refRequestTimeout,
	MaxAttempts:      refMaxAttempts,
	RetryBudget:      refRetryBudget,
	BackoffBase:      refBaseBackoff,
	BackoffCap:       refMaxBackoff,
	BackoffJitter:    refJitter,
	MaxRetryAfter:    refMaxRetryAfter,
	BreakerOpenDelay: refOpenDelay,
	RecoveryTime:     3 * time.Second,
	HalfOpenProbes:   3,
	ConnectTimeout:   refConnectTimeout,
}

// Profile holds every service to Contract: a gallery client is judged on
// the promises it makes, and fails only where its bug breaks one.
func Profile() harness.Profile { return harness.Profile{Default: Contract} }

// ReferenceConfig is the reference client's configuration for svc, shaped to
// Contract: 16 connections, a 250ms pool wait, a 2s request
// timeout, 3 attempts with backoff, a breaker that trips after 5 consecutive
// failures and probes again after 1s. Every gallery client is this
// configuration plus one bug, and pooledclient.NewClient(ReferenceConfig(svc))
// is the control that passes what they fail.
func ReferenceConfig(svc harness.Service) (pooledclient.Config, error) {
	cfg := pooledclient.Config{
		Name:                  svc.Name,
		BaseURL:               svc.BaseURL,
		RootCAs:               svc.CAs,
		MaxConnsPerHost:       refMaxConns,
		MaxIdleConns:          refMaxConns,
		IdleTimeout:           90 * time.Second,
		MaxLifetime:           2 * time.Minute,
		ConnectTimeout:        time.Second,
		TLSHandshakeTimeout:   time.Second,
		ResponseHeaderTimeout: refRequestTimeout,
		RequestTimeout:        refRequestTimeout,
		PoolWait:              refPoolWait,
		Retry: pooledclient.RetryConfig{
			MaxAttempts: refMaxAttempts, BaseBackoff: refBaseBackoff, MaxBackoff: refMaxBackoff,
			Jitter: refJitter, MaxRetryAfter: refMaxRetryAfter, BudgetRatio: refRetryBudget, BudgetMinPerSecond: 10,
		},
		Breaker: pooledclient.BreakerConfig{
			ConsecutiveFailures: refTripAfter, FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 20,
			OpenDelay: refOpenDelay, HalfOpenProbes: refHalfOpenProbes, ProbeSuccesses: refHalfOpenProbes,
		},
		Seed: 1,
	}
	if err := cfg.Validate(); err != nil {
		return pooledclient.Config{}, fmt.Errorf("brokenclients: service %q: %w", svc.Name, err)
	}
	return cfg, nil
}

// configured builds a pooledclient from the reference configuration changed
// by edit (nil: unchanged).
func configured(svc harness.Service, edit func(*pooledclient.Config)) (*pooledclient.Client, error) {
	cfg, err := ReferenceConfig(svc)
	if err != nil {
		return nil, err
	}
	if edit != nil {
		edit(&cfg)
	}
	cl, err := pooledclient.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("brokenclients: service %q: %w", svc.Name, err)
	}
	return cl, nil
}

func newNoCircuitBreaker(svc harness.Service) (harness.Client, error) {
	return configured(svc, func(c *pooledclient.Config) { c.Breaker = pooledclient.BreakerConfig{Disabled: true} })
}

func newNoTimeouts(svc harness.Service) (harness.Client, error) {
	return configured(svc, func(c *pooledclient.Config) {
		c.ConnectTimeout, c.TLSHandshakeTimeout, c.ResponseHeaderTimeout, c.RequestTimeout = 0, 0, 0, 0
	})
}

// unboundedConns stands for "no limit": pooledclient refuses
// MaxConnsPerHost 0, and its slots are a chan struct{}, so a huge capacity
// costs no memory.
const unboundedConns = 1 << 20

func newUnboundedPool(svc harness.Service) (harness.Client, error) {
	return configured(svc, func(c *pooledclient.Config) { c.MaxConnsPerHost = unboundedConns })
}

// queueForever stands for net/http's unbounded wait for a connection; only
// the request timeout ends the wait.
const queueForever = 24 * time.Hour

func newUnboundedQueue(svc harness.Service) (harness.Client, error) {
	return configured(svc, func(c *pooledclient.Config) { c.PoolWait = queueForever })
}

func newRetriesWithoutBackoff(svc harness.Service) (harness.Client, error) {
	return configured(svc, func(c *pooledclient.Config) {
		c.Retry.MaxAttempts = 10
		c.Retry.BaseBackoff, c.Retry.MaxBackoff, c.Retry.Jitter = 0, 0, 0
		// No budget either: a storm is not a storm if something rations it.
		c.Retry.BudgetRatio, c.Retry.BudgetMinPerSecond = 0, 1_000_000
	})
}
