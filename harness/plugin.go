package harness

import (
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
	// PoolWait is how long a call may wait for a free connection before it
	// fails fast.
	PoolWait time.Duration `json:"pool_wait"`
	// RequestTimeout bounds one logical call, retries and body read included.
	RequestTimeout time.Duration `json:"request_timeout"`
	// MaxAttempts bounds the attempts of one logical call (1 = no retries).
	MaxAttempts int `json:"max_attempts"`
	// BreakerOpenDelay is how long the breaker stays open before it probes;
	// zero when the client has no breaker.
	BreakerOpenDelay time.Duration `json:"breaker_open_delay"`
	// RecoveryTime bounds how long after a fault clears the client is healthy again.
	RecoveryTime time.Duration `json:"recovery_time"`
	// HalfOpenProbes is the most attempts the breaker lets through at once
	// while half-open (default 3); the breaker checks hold the attempts that
	// reach the server during an outage to it.
	HalfOpenProbes int `json:"half_open_probes,omitempty"`
}

// Profile is the contract a team claims for its client, per service.
type Profile struct {
	// Default applies to every service not named in Services.
	Default Contract `json:"default"`
	// Services overrides Default per service name.
	Services map[string]Contract `json:"services,omitempty"`
}

// DefaultContract is the contract assumed when a team declares nothing:
// 16 connections per service, a 250ms pool wait, a 2s request timeout, 3
// attempts, a 1s breaker open delay admitting 3 half-open probes and a 3s
// recovery.
var DefaultContract = Contract{
	MaxConns:         16,
	PoolWait:         250 * time.Millisecond,
	RequestTimeout:   2 * time.Second,
	MaxAttempts:      3,
	BreakerOpenDelay: time.Second,
	RecoveryTime:     3 * time.Second,
	HalfOpenProbes:   3,
}

// DefaultProfile returns a profile with DefaultContract for every service.
func DefaultProfile() Profile { return Profile{Default: DefaultContract} }

// For returns the contract for one service, with zero fields filled from
// DefaultContract.
func (p Profile) For(service string) Contract {
	c, ok := p.Services[service]
	if !ok {
		c = p.Default
	}
	return c.withDefaults()
}

func (c Contract) withDefaults() Contract {
	d := DefaultContract
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.PoolWait == 0 {
		c.PoolWait = d.PoolWait
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.RecoveryTime == 0 {
		c.RecoveryTime = d.RecoveryTime
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = d.HalfOpenProbes
	}
	return c
}
