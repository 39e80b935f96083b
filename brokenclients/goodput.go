package brokenclients

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
)

// benchmarkDeadline is an attempt deadline sized from the p99 of a quiet
// benchmark on loopback: far below the 2s the client declares.
const benchmarkDeadline = 10 * time.Millisecond

// attemptDeadlineCutsBody gives each call a deadline of its own that stays
// armed while the caller reads the body, as a per-attempt timeout that
// wraps the whole exchange does: a body that takes longer to arrive than
// the deadline (fragmented, on a loaded host) is cut mid-read, though the
// declared request timeout would have let it finish.
type attemptDeadlineCutsBody struct {
	*http.Client
	deadline time.Duration
}

func (c attemptDeadlineCutsBody) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), c.deadline)
	resp, err := c.Client.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		return resp, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases its context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
	once   sync.Once
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.cancel)
	return err
}

func newAttemptDeadlineCutsBody(svc harness.Service) (harness.Client, error) {
	c, err := plainClient(svc, nil)
	if err != nil {
		return nil, err
	}
	return attemptDeadlineCutsBody{Client: c, deadline: benchmarkDeadline}, nil
}

// newBreakerTripsOnNoise is the reference client whose breaker trips on
// what a healthy service's ordinary errors reach: two failed attempts in a
// row, or a failure rate of 10% over 10 calls. A service that fails one
// attempt in five, which the declared retries would absorb, is cut off,
// and each time the breaker closes again it trips again at once. (On the
// rate rule alone, a window that still held the calls from before the
// fault sometimes kept it below 10% for a whole run.)
func newBreakerTripsOnNoise(svc harness.Service) (harness.Client, error) {
	return configured(svc, func(c *pooledclient.Config) {
		c.Breaker.ConsecutiveFailures = 2
		c.Breaker.FailureRate, c.Breaker.MinCalls = 0.1, 10
	})
}
