package brokenclients

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
)

// retryBugs are the classic retry mistakes; the zero value is a correct
// retry loop (the reference's, minus jitter and the retry budget: see
// retryLoopProfile).
type retryBugs struct {
	// retryUnsafe retries POST and PATCH without an Idempotency-Key.
	retryUnsafe bool
	// ignoreRetryAfter retries after the loop's own backoff whatever the
	// server asked for.
	ignoreRetryAfter bool
	// leakDiscarded never closes the body of a response it retries past.
	leakDiscarded bool
	// sleepIgnoresContext waits between attempts with time.Sleep, deaf to
	// the caller's deadline or cancellation.
	sleepIgnoresContext bool
	// constantBackoff waits baseBackoff before every retry.
	constantBackoff bool
	// uncapped doubles its delay past maxBackoff.
	uncapped bool
	// sleepAfterLast waits its backoff once more after the last attempt,
	// before it hands the last answer back.
	sleepAfterLast bool
	// oneAttemptShort stops after maxAttempts-1 attempts.
	oneAttemptShort bool
	// no429Retry hands every 429 back as final.
	no429Retry bool
	// closeUndrained closes the body of a response it retries past
	// without reading it, which costs its connection.
	closeUndrained bool
	// honourAnyRetryAfter waits whatever Retry-After a server asks for,
	// until the call's deadline ends the wait.
	honourAnyRetryAfter bool
}

// retryingClient is the gallery's one retry loop, around a pooledclient
// whose own retries are off and whose request timeout is left to the loop.
type retryingClient struct {
	name  string
	inner *pooledclient.Client
	bugs  retryBugs

	maxAttempts   int
	baseBackoff   time.Duration
	maxBackoff    time.Duration
	maxRetryAfter time.Duration
	timeout       time.Duration // the whole logical call, body read included

	// abandoned holds the contexts of leaked answers, for this package's
	// tests to end at cleanup: an unread body keeps its connection's
	// goroutines blocked forever, even after the server closed it.
	mu        sync.Mutex
	abandoned []context.CancelCauseFunc
}

func newRetrying(svc harness.Service, bugs retryBugs) (harness.Client, error) {
	inner, err := configured(svc, func(c *pooledclient.Config) {
		c.Retry.MaxAttempts = 1
		// The loop owns the call's deadline: the inner client's would cancel
		// every attempt's connection at its deadline, even a leaked one.
		c.RequestTimeout = 0
	})
	if err != nil {
		return nil, err
	}
	return &retryingClient{
		name: svc.Name, inner: inner, bugs: bugs,
		maxAttempts: refMaxAttempts, baseBackoff: refBaseBackoff, maxBackoff: refMaxBackoff,
		maxRetryAfter: refMaxRetryAfter, timeout: refRequestTimeout,
	}, nil
}

func newRetryBodiesNotClosed(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{leakDiscarded: true})
}

func newRetriesUnsafePost(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{retryUnsafe: true})
}

func newRetryAfterIgnored(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{ignoreRetryAfter: true})
}

// errCallTimeout ends an attempt whose call ran out of time; it wraps
// context.DeadlineExceeded so it reads as a timeout.
var errCallTimeout = fmt.Errorf("brokenclients: request timeout passed: %w", context.DeadlineExceeded)

// Do sends req, retrying connection errors and 429/5xx answers with capped
// exponential backoff. Each attempt carries its own context: cancelled if
// its headers miss the call's deadline, and, for the answer handed back,
// when its body ends or the deadline passes. A retried-past answer is
// disposed of (drained, closed, its context released) unless the bug says
// otherwise.
func (c *retryingClient) Do(req *http.Request) (*http.Response, error) {
	deadline := time.Now().Add(c.timeout)
	retry := c.maxAttempts > 1 && c.replayable(req)
	body := req.Body
	for attempt := 1; ; attempt++ {
		resp, cancel, err := c.attempt(req, body, deadline)
		last := c.maxAttempts
		if c.bugs.oneAttemptShort {
			last--
		}
		if !retry || attempt >= last || !c.worthRetry(req.Context(), resp, err) {
			if c.bugs.sleepAfterLast && retry && c.worthRetry(req.Context(), resp, err) {
				// The loop's sleep sits at the end of every iteration, the last one's too.
				_ = sleep(req.Context(), min(c.backoff(attempt), time.Until(deadline)))
			}
			return c.handOver(resp, cancel, deadline), err
		}
		delay := c.backoff(attempt)
		if resp != nil && !c.bugs.ignoreRetryAfter {
			if ra, ok := retryAfter(resp.Header, time.Now()); ok {
				if ra > c.maxRetryAfter && !c.bugs.honourAnyRetryAfter {
					return c.handOver(resp, cancel, deadline), nil
				}
				delay = max(delay, ra)
			}
		}
		if !time.Now().Add(delay).Before(deadline) {
			if c.bugs.honourAnyRetryAfter && resp != nil {
				// Waits as asked; only the call's deadline ends the wait.
				_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
				_ = resp.Body.Close()
				cancel(nil)
				_ = sleep(req.Context(), time.Until(deadline))
				return nil, fmt.Errorf("brokenclients: %s: waiting %s (Retry-After) before retry %d: %w", c.name, delay, attempt, errCallTimeout)
			}
			return c.handOver(resp, cancel, deadline), err
		}
		if resp != nil && !c.bugs.leakDiscarded {
			if !c.bugs.closeUndrained {
				_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
			}
			_ = resp.Body.Close()
			cancel(nil)
		} else if resp != nil {
			c.mu.Lock()
			c.abandoned = append(c.abandoned, cancel)
			c.mu.Unlock()
		}
		if c.bugs.sleepIgnoresContext {
			time.Sleep(delay)
		} else if err := sleep(req.Context(), delay); err != nil {
			return nil, fmt.Errorf("brokenclients: %s: waiting %s before retry %d: %w", c.name, delay, attempt, err)
		}
		if req.Body != nil && req.Body != http.NoBody {
			if body, err = req.GetBody(); err != nil {
				return nil, fmt.Errorf("brokenclients: %s: rewinding the request body for a retry: %w", c.name, err)
			}
		}
	}
}

// attempt sends one attempt. Its context is cancelled with errCallTimeout
// if the headers have not arrived by the deadline; on success the caller
// owns the returned cancel.
func (c *retryingClient) attempt(req *http.Request, body io.ReadCloser, deadline time.Time) (*http.Response, context.CancelCauseFunc, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	headers := time.AfterFunc(time.Until(deadline), func() { cancel(errCallTimeout) })
	r := req.WithContext(ctx)
	r.Body = body
	resp, err := c.inner.Do(r)
	headers.Stop()
	if err != nil {
		cancel(nil)
		if ctx.Err() != nil && context.Cause(ctx) == errCallTimeout && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", err, errCallTimeout)
		}
		return nil, nil, err
	}
	return resp, cancel, nil
}

// handOver gives the caller the last answer, its body bounded by the call's
// deadline.
func (c *retryingClient) handOver(resp *http.Response, cancel context.CancelCauseFunc, deadline time.Time) *http.Response {
	if resp == nil {
		return nil
	}
	b := &deadlineBody{ReadCloser: resp.Body, cancel: cancel}
	b.timer = time.AfterFunc(time.Until(deadline), func() { cancel(errCallTimeout) })
	resp.Body = b
	return resp
}

func (c *retryingClient) replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
	default:
		if req.Header.Get("Idempotency-Key") == "" && !c.bugs.retryUnsafe {
			return false
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func (c *retryingClient) worthRetry(ctx context.Context, resp *http.Response, err error) bool {
	if resp != nil {
		if resp.StatusCode == http.StatusTooManyRequests && c.bugs.no429Retry {
			return false
		}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, pooledclient.ErrCircuitOpen) && !errors.Is(err, pooledclient.ErrPoolExhausted) &&
		!errors.Is(err, pooledclient.ErrClosed)
}

// backoff is the delay before retry n (1 for the first): doubling from
// baseBackoff, capped at maxBackoff, without jitter so a run replays exactly.
func (c *retryingClient) backoff(n int) time.Duration {
	d := c.baseBackoff
	if c.bugs.constantBackoff {
		return d
	}
	for i := 1; i < n && (d < c.maxBackoff || c.bugs.uncapped); i++ {
		d *= 2
	}
	if c.bugs.uncapped {
		return d
	}
	return min(d, c.maxBackoff)
}

func (c *retryingClient) CloseIdleConnections() { c.inner.CloseIdleConnections() }

func (c *retryingClient) Close() error { return c.inner.Close() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// retryAfter parses Retry-After (delta-seconds or an HTTP-date).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second, secs >= 0
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// deadlineBody ends its attempt's context when the body ends, or at the
// call's deadline if the caller is still reading.
type deadlineBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
	timer  *time.Timer
	once   sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

func (b *deadlineBody) end() {
	b.once.Do(func() {
		b.timer.Stop()
		b.cancel(nil)
	})
}
