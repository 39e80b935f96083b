package reference

import (
	"context"
	"fmt"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
)

// recoveryMargin covers scheduling on a loaded machine in RecoveryTime.
const recoveryMargin = 500 * time.Millisecond

// Configs returns the reference configuration of every service: the
// pooledclient defaults, unchanged.
func Configs() []pooledclient.Config { return pooledclient.DefaultConfigs() }

// Factory builds the reference client of one service, pointed at the
// service's endpoint and trusting only its CA, and pre-dials its MinConns
// connections.
//
// A failed warm-up is not an error: a service that starts while a
// dependency is down must start cold and dial on demand, so the factory
// returns the client either way (the checks judge what happens next).
func Factory(svc harness.Service) (harness.Client, error) { return newClient(svc, 0) }

// PoolFactory builds the reference client as Factory does, with its pool
// sized to pool connections: at most pool open (MaxConnsPerHost), pool kept
// idle (MaxIdleConns) and pool pre-dialled (MinConns), so that a pool-sizing
// sweep measures a warm pool of exactly that size rather than charging its
// first calls with dials. Timeouts, retries and the breaker stay as
// configured.
func PoolFactory(pool int) harness.ClientFactory {
	return func(svc harness.Service) (harness.Client, error) {
		if pool < 1 {
			return nil, fmt.Errorf("reference client for %s: pool %d: give a pool of at least 1 connection", svc.Name, pool)
		}
		return newClient(svc, pool)
	}
}

// newClient builds and warms the reference client of svc; a pool > 0
// replaces the configured pool bounds.
func newClient(svc harness.Service, pool int) (harness.Client, error) {
	cfg, err := pooledclient.DefaultConfig(svc.Name, svc.BaseURL, svc.CAs)
	if err != nil {
		return nil, fmt.Errorf("reference client for %s: %w", svc.Name, err)
	}
	if pool > 0 {
		cfg.MaxConnsPerHost, cfg.MaxIdleConns, cfg.MinConns = pool, pool, pool
	}
	// The reference speaks HTTP/2 where a service offers it (certify
	// -http2); its slots bound the calls in flight either way.
	cfg.HTTP2 = true
	cl, err := pooledclient.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("reference client for %s: %w", svc.Name, err)
	}
	// Warm bounds itself by the service's RequestTimeout.
	_ = cl.Warm(context.Background())
	return cl, nil
}

// Profile is the contract the reference configurations declare, service by
// service, derived from Configs so the two cannot drift apart.
func Profile() harness.Profile {
	p := harness.Profile{Default: harness.DefaultContract, Services: map[string]harness.Contract{}}
	for _, c := range Configs() {
		p.Services[c.Name] = ContractOf(c)
	}
	return p
}

// ContractOf is what one pooledclient configuration promises.
//
// RecoveryTime: once a fault clears, a breaker that opened just before
// stays open for OpenDelay, then its probes may each take up to one
// RequestTimeout before the breaker closes; a second of margin covers
// scheduling on a loaded machine. Without a breaker, recovery is bounded by
// the calls already in flight: one RequestTimeout, plus the same margin.
func ContractOf(c pooledclient.Config) harness.Contract {
	k := harness.Contract{
		MaxConns:        c.MaxConnsPerHost,
		MaxInFlight:     c.MaxConnsPerHost, // a slot per call, held until its body ends
		PoolWait:        c.PoolWait,
		RequestTimeout:  c.RequestTimeout,
		MaxAttempts:     max(1, c.Retry.MaxAttempts),
		BackoffBase:     c.Retry.BaseBackoff,
		BackoffCap:      c.Retry.MaxBackoff,
		BackoffJitter:   c.Retry.Jitter,
		MaxRetryAfter:   c.Retry.MaxRetryAfter,
		RetryBudget:     c.Retry.BudgetRatio,
		RecoveryTime:    c.RequestTimeout + recoveryMargin,
		MaxConnLifetime: c.MaxLifetime,
		IdleTimeout:     c.IdleTimeout,
		// Dial and handshake have a timeout each: a connection is usable
		// (or given up) within their sum.
		ConnectTimeout: c.ConnectTimeout + c.TLSHandshakeTimeout,
	}
	if !c.Breaker.Disabled {
		k.BreakerOpenDelay = c.Breaker.OpenDelay
		k.HalfOpenProbes = c.Breaker.HalfOpenProbes
		k.RecoveryTime += c.Breaker.OpenDelay
	}
	return k
}
