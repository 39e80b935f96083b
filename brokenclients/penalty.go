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

// Bounds of stickyBackoffClient's delay. The cap is short on purpose: the
// bug is that the delay never goes away, not that it is long, and a short
// one still leaves the recovery checks enough calls to judge.
const (
	penaltyBase = 25 * time.Millisecond
	penaltyMax  = 150 * time.Millisecond
)

// stickyBackoffClient is the reference client behind a client-wide backoff,
// as code has that "goes easy on a struggling service": each failed call
// doubles a delay every later call waits before it is sent. The correct
// version resets the delay once a call succeeds; this one never does, so
// after a single outage the service is called at a crawl for good.
type stickyBackoffClient struct {
	name  string
	inner *pooledclient.Client

	mu    sync.Mutex
	delay time.Duration
}

func newBackoffNeverResets(svc harness.Service) (harness.Client, error) {
	inner, err := configured(svc, nil)
	if err != nil {
		return nil, err
	}
	return &stickyBackoffClient{name: svc.Name, inner: inner}, nil
}

func (c *stickyBackoffClient) Do(req *http.Request) (*http.Response, error) {
	if d := c.penalty(); d > 0 {
		if err := sleep(req.Context(), d); err != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, fmt.Errorf("brokenclients: %s: backing off %s before the call: %w", c.name, d, err)
		}
	}
	resp, err := c.inner.Do(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	cancelled := errors.Is(err, context.Canceled) && req.Context().Err() != nil
	if !cancelled && pooledclient.DefaultIsFailure(status, err) {
		c.mu.Lock()
		c.delay = min(max(2*c.delay, penaltyBase), penaltyMax)
		c.mu.Unlock()
	}
	// The bug: a success leaves c.delay as it is instead of resetting it.
	return resp, err
}

func (c *stickyBackoffClient) penalty() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delay
}

func (c *stickyBackoffClient) CloseIdleConnections() { c.inner.CloseIdleConnections() }

func (c *stickyBackoffClient) Close() error { return c.inner.Close() }
