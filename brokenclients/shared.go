package brokenclients

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
)

// sharedLimiter is one budget of calls in flight for a whole process, as
// code has that guards "outbound calls" with a single package-level
// semaphore (or one worker pool, or one http.Transport with a global cap)
// instead of one per downstream service. It has the reference's numbers (16
// slots, a 250ms wait before failing with ErrPoolExhausted): only its scope
// is wrong.
type sharedLimiter struct {
	slots chan struct{}
	wait  time.Duration
}

func newSharedLimiter(n int, wait time.Duration) *sharedLimiter {
	return &sharedLimiter{slots: make(chan struct{}, n), wait: wait}
}

// acquire takes a slot, waiting at most l.wait.
func (l *sharedLimiter) acquire(ctx context.Context, service string) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("brokenclients: %s: waiting for a slot of the shared pool: %w", service, context.Cause(ctx))
	case <-t.C:
		return fmt.Errorf("brokenclients: %s: all %d slots of the pool shared by every service busy for %s: %w",
			service, cap(l.slots), l.wait, pooledclient.ErrPoolExhausted)
	}
}

func (l *sharedLimiter) release() { <-l.slots }

// sharedPoolFactory returns a factory whose clients, one per service, all
// draw on one sharedLimiter: the harness calls a factory once per service,
// just as a program builds its clients from one package.
func sharedPoolFactory() func(harness.Service) (harness.Client, error) {
	shared := newSharedLimiter(refMaxConns, refPoolWait)
	return func(svc harness.Service) (harness.Client, error) {
		inner, err := configured(svc, nil)
		if err != nil {
			return nil, err
		}
		return &sharedPoolClient{name: svc.Name, inner: inner, shared: shared}, nil
	}
}

// sharedPoolClient is the reference client of one service behind the
// process-wide limiter. A call holds its slot until its body ends, as the
// reference holds its per-service connection slot.
type sharedPoolClient struct {
	name   string
	inner  *pooledclient.Client
	shared *sharedLimiter
}

func (c *sharedPoolClient) Do(req *http.Request) (*http.Response, error) {
	if err := c.shared.acquire(req.Context(), c.name); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := c.inner.Do(req)
	if err != nil {
		c.shared.release()
		return resp, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: c.shared.release}
	return resp, nil
}

func (c *sharedPoolClient) CloseIdleConnections() { c.inner.CloseIdleConnections() }

func (c *sharedPoolClient) Close() error { return c.inner.Close() }

// releasingBody gives its slot back when the body ends (EOF, error or
// Close), once.
type releasingBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
