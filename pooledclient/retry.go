package pooledclient

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RetryConfig says which calls are retried, how long to wait between
// attempts and how many retries the service may receive overall.
type RetryConfig struct {
	// MaxAttempts bounds the attempts of one call (1 or 0: no retries).
	MaxAttempts int
	// BaseBackoff doubles per attempt up to MaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Jitter is the randomized share of each delay: 1 is "full jitter"
	// (uniform in [0, delay]), 0 no jitter, 0.5 "equal jitter" (gaps never shrink).
	Jitter float64
	// MaxRetryAfter is the longest Retry-After honoured; a response asking
	// for longer is returned to the caller rather than retried early.
	MaxRetryAfter time.Duration
	// BudgetRatio is the share of calls that may be retried (0.2: at most one
	// retry per five calls, sustained); BudgetMinPerSecond retries per second
	// are always allowed so a quiet service can still retry.
	BudgetRatio        float64
	BudgetMinPerSecond int
}

// maxDrain bounds how much of a discarded response body is read so its
// connection can be reused; a longer body costs a connection instead.
const maxDrain = 64 << 10

// retryableStatus reports the statuses worth another attempt.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// replayable reports whether a request may be sent again: an idempotent
// method or an Idempotency-Key, and a body that can be rewound.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
	default:
		if req.Header.Get("Idempotency-Key") == "" {
			return false
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// backoff draws the delay before retry number n (1 for the first retry).
type backoff struct {
	cfg RetryConfig
	mu  sync.Mutex
	rnd *rand.Rand
}

func newBackoff(cfg RetryConfig, seed uint64) *backoff {
	return &backoff{cfg: cfg, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (b *backoff) delay(n int) time.Duration {
	if b.cfg.BaseBackoff <= 0 || n <= 0 {
		return 0
	}
	d := b.cfg.BaseBackoff
	for i := 1; i < n && (b.cfg.MaxBackoff <= 0 || d < b.cfg.MaxBackoff); i++ {
		d *= 2
	}
	if b.cfg.MaxBackoff > 0 && d > b.cfg.MaxBackoff {
		d = b.cfg.MaxBackoff
	}
	jit := time.Duration(float64(d) * b.cfg.Jitter)
	if jit <= 0 {
		return d
	}
	b.mu.Lock()
	r := time.Duration(b.rnd.Int64N(int64(jit) + 1))
	b.mu.Unlock()
	return d - jit + r
}

// retryAfter parses a Retry-After header (delta-seconds or HTTP-date)
// relative to now; ok is false when there is none or it is malformed.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// retryBudget keeps retries a bounded share of traffic, so that during an
// outage retries cannot multiply the load (Finagle's RetryBudget; gRPC's
// retry throttling is the same idea). Every call deposits BudgetRatio of a
// token, every retry withdraws one; BudgetMinPerSecond tokens trickle in
// over time. The balance is capped so a long quiet period cannot bank an
// unbounded burst.
type retryBudget struct {
	ratioMilli int64
	minPerSec  int64
	capMilli   int64
	clock      Clock

	balance atomic.Int64 // milli-tokens
	mu      sync.Mutex
	last    time.Time
}

func newRetryBudget(cfg RetryConfig, clock Clock) *retryBudget {
	cp := int64(cfg.BudgetMinPerSecond)
	if cp < 10 {
		cp = 10
	}
	b := &retryBudget{
		ratioMilli: int64(cfg.BudgetRatio * 1000),
		minPerSec:  int64(cfg.BudgetMinPerSecond),
		capMilli:   cp * 1000,
		clock:      clock,
		last:       clock.Now(),
	}
	b.balance.Store(int64(cfg.BudgetMinPerSecond) * 1000)
	return b
}

func (b *retryBudget) deposit() {
	if b.ratioMilli == 0 {
		return
	}
	if v := b.balance.Add(b.ratioMilli); v > b.capMilli {
		b.balance.CompareAndSwap(v, b.capMilli)
	}
}

// withdraw takes one retry token; false means the budget is spent.
func (b *retryBudget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if el := now.Sub(b.last); el > 0 && b.minPerSec > 0 {
		add := int64(el) * b.minPerSec / int64(time.Millisecond) // milli-tokens
		if add > 0 {
			v := b.balance.Add(add)
			if v > b.capMilli {
				b.balance.Store(b.capMilli)
			}
			b.last = now
		}
	} else if el > 0 {
		b.last = now
	}
	for range 16 {
		v := b.balance.Load()
		if v < 1000 {
			return false
		}
		if b.balance.CompareAndSwap(v, v-1000) {
			return true
		}
	}
	return false
}

// drainAndClose reads at most maxDrain bytes of a discarded body so the
// connection goes back to the pool, then closes it.
func drainAndClose(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, body, maxDrain)
	_ = body.Close()
}

// errorKind names the kind of a transport error for the metrics.
func errorKind(err error) string {
	var ne interface{ Timeout() bool }
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errConnRetired):
		return "retired"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case isReset(err):
		return "reset"
	case isRefused(err):
		return "refused"
	case isDialError(err):
		return "dial"
	case isTLSError(err):
		return "tls"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}
