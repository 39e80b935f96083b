package brokenclients

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
)

// breakerBug is the classic half-open mistake a gallery breaker makes.
type breakerBug int

const (
	// neverHalfOpens: once open, the breaker never lets a probe through.
	neverHalfOpens breakerBug = iota + 1
	// halfOpenAdmitsAll: half-open admits every call, not a few probes.
	halfOpenAdmitsAll
)

// breakingClient is the gallery's one circuit breaker, around a
// pooledclient whose own breaker is off. Apart from its bug it follows the
// reference's: trips after tripAfter consecutive failures, stays open for
// openDelay, lets at most probes calls in flight while half-open, closes on a
// successful probe and re-opens on a failed one. It judges a call when Do
// returns, by pooledclient.DefaultIsFailure.
type breakingClient struct {
	name  string
	inner *pooledclient.Client
	bug   breakerBug
	now   func() time.Time

	tripAfter int
	openDelay time.Duration
	probes    int

	mu       sync.Mutex
	state    pooledclient.BreakerState
	gen      uint64 // bumped on every state change, so late outcomes are ignored
	failures int
	openedAt time.Time
	inFlight int // probes in flight while half-open
}

func newBreaking(svc harness.Service, bug breakerBug) (harness.Client, error) {
	inner, err := configured(svc, func(c *pooledclient.Config) { c.Breaker = pooledclient.BreakerConfig{Disabled: true} })
	if err != nil {
		return nil, err
	}
	return &breakingClient{
		name: svc.Name, inner: inner, bug: bug, now: time.Now,
		tripAfter: refTripAfter, openDelay: refOpenDelay, probes: refHalfOpenProbes,
	}, nil
}

func newBreakerNeverHalfOpens(svc harness.Service) (harness.Client, error) {
	return newBreaking(svc, neverHalfOpens)
}

func newHalfOpenAdmitsAll(svc harness.Service) (harness.Client, error) {
	return newBreaking(svc, halfOpenAdmitsAll)
}

// Do sends req through the breaker.
func (c *breakingClient) Do(req *http.Request) (*http.Response, error) {
	gen, probe, err := c.allow()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("brokenclients: %s: %w: failing fast without calling", c.name, err)
	}
	resp, err := c.inner.Do(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
		c.cancel(gen, probe) // the caller gave up: says nothing about the service
	} else {
		c.done(gen, probe, pooledclient.DefaultIsFailure(status, err))
	}
	return resp, err
}

func (c *breakingClient) allow() (gen uint64, probe bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case pooledclient.StateClosed:
		return c.gen, false, nil
	case pooledclient.StateOpen:
		if c.bug == neverHalfOpens || c.now().Before(c.openedAt.Add(c.openDelay)) {
			return 0, false, pooledclient.ErrCircuitOpen
		}
		c.setLocked(pooledclient.StateHalfOpen)
	}
	if c.bug == halfOpenAdmitsAll || c.inFlight < c.probes {
		c.inFlight++
		return c.gen, true, nil
	}
	return 0, false, pooledclient.ErrCircuitOpen
}

func (c *breakingClient) done(gen uint64, probe, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	switch c.state {
	case pooledclient.StateClosed:
		if !failed {
			c.failures = 0
			return
		}
		if c.failures++; c.failures >= c.tripAfter {
			c.setLocked(pooledclient.StateOpen)
		}
	case pooledclient.StateHalfOpen:
		if probe {
			c.inFlight--
		}
		if failed {
			c.setLocked(pooledclient.StateOpen)
		} else {
			c.setLocked(pooledclient.StateClosed)
		}
	}
}

func (c *breakingClient) cancel(gen uint64, probe bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if probe && gen == c.gen && c.state == pooledclient.StateHalfOpen {
		c.inFlight--
	}
}

func (c *breakingClient) setLocked(s pooledclient.BreakerState) {
	c.state = s
	c.gen++
	c.failures, c.inFlight = 0, 0
	if s == pooledclient.StateOpen {
		c.openedAt = c.now()
	}
}

// BreakerState returns the breaker's current state (open stays open until a
// call arrives after the open delay, as with a lazy breaker).
func (c *breakingClient) BreakerState() pooledclient.BreakerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *breakingClient) CloseIdleConnections() { c.inner.CloseIdleConnections() }

func (c *breakingClient) Close() error { return c.inner.Close() }
