package pooledclient

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, c *Client, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })

func TestThousandSequentialCallsOpenOneConnection(t *testing.T) {
	srv := newCountingServer(t, okHandler)
	c, _ := newTestClient(t, testConfig(srv.URL))
	for i := range 1000 {
		code, err := get(t, c, srv.URL+"/x")
		require.NoError(t, err, "call %d", i)
		require.Equal(t, http.StatusOK, code)
	}
	accepted, _, _ := srv.counts()
	assert.Equal(t, 1, accepted)
	assert.Equal(t, int64(1), c.Stats().Opened)
}

func TestPoolNeverExceedsMaxUnderConcurrency(t *testing.T) {
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		_, _ = io.WriteString(w, "ok")
	}))
	cfg := testConfig(srv.URL)
	cfg.MaxConnsPerHost, cfg.MaxIdleConns = 4, 4
	c, _ := newTestClient(t, cfg)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 32 {
		wg.Go(func() {
			for range 10 {
				if code, err := get(t, c, srv.URL); err != nil || code != 200 {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	_, _, peak := srv.counts()
	assert.Zero(t, failures.Load())
	assert.LessOrEqual(t, peak, 4, "server-side peak of concurrent connections")
	assert.GreaterOrEqual(t, peak, 2, "the load did use several connections")
}

func TestPoolWaitFailsFast(t *testing.T) {
	release := make(chan struct{})
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	cfg := testConfig(srv.URL)
	cfg.MaxConnsPerHost, cfg.MaxIdleConns, cfg.PoolWait = 2, 2, 100*time.Millisecond
	c, reg := newTestClient(t, cfg)

	var held sync.WaitGroup
	for range 2 {
		held.Go(func() { _, _ = get(t, c, srv.URL) })
	}
	t.Cleanup(held.Wait) // after release closes: cleanups run last-in first-out
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 2 }, "two calls hold both connections")

	start := time.Now()
	_, err := get(t, c, srv.URL)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, ErrPoolExhausted)
	assert.Contains(t, err.Error(), "svc: all 2 connections busy")
	assert.GreaterOrEqual(t, elapsed, 90*time.Millisecond, "it did wait for a slot")
	assert.Less(t, elapsed, 500*time.Millisecond, "and failed fast, well under 5x PoolWait")
	assert.Equal(t, 1.0, testutil.ToFloat64(c.m.poolExhausted.WithLabelValues("svc")))
	_, _, peak := srv.counts()
	assert.Equal(t, 2, peak)
	n, err := testutil.GatherAndCount(reg, "http_pool_wait_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestMaxLifetimeRetiresConnectionsWithoutFailingCalls(t *testing.T) {
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	cfg := testConfig(srv.URL)
	cfg.MaxLifetime = 100 * time.Millisecond
	c, _ := newTestClient(t, cfg)

	deadline := time.Now().Add(700 * time.Millisecond)
	calls := 0
	for time.Now().Before(deadline) && calls < 100_000 {
		method := http.MethodGet
		if calls%2 == 1 {
			method = http.MethodPost // no idempotency key: the retirement must still not fail it
		}
		req, err := http.NewRequest(method, srv.URL, strings.NewReader("payload"))
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err, "call %d", calls)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		calls++
		time.Sleep(time.Millisecond)
	}
	accepted, _, _ := srv.counts()
	assert.GreaterOrEqual(t, accepted, 3, "connections were retired and replaced over %d calls", calls)
	for _, l := range srv.lifetimes() {
		assert.Less(t, l, 100*time.Millisecond+400*time.Millisecond, "a connection outlived MaxLifetime by far")
	}
	// An idle connection past its lifetime is closed too, not only busy ones.
	eventually(t, 3*time.Second, func() bool { _, open, _ := srv.counts(); return open == 0 }, "idle connection retired")
	assert.Equal(t, 0, c.Stats().Open)
}

// attemptLog records when each request arrived.
type attemptLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *attemptLog) add() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = append(l.at, time.Now())
	return len(l.at)
}

func (l *attemptLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

func TestRetries503BurstWithGrowingGapsAndBoundedAttempts(t *testing.T) {
	tests := []struct {
		name      string
		failFirst int
		attempts  int
		wantCode  int
		wantCalls int
	}{
		{"recovers after a burst", 3, 4, http.StatusOK, 4},
		{"bounded when it never recovers", 1000, 3, http.StatusServiceUnavailable, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log attemptLog
			srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if log.add() <= tt.failFirst {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = io.WriteString(w, strings.Repeat("x", 1000))
					return
				}
				_, _ = io.WriteString(w, "ok")
			}))
			cfg := testConfig(srv.URL)
			cfg.Retry = RetryConfig{MaxAttempts: tt.attempts, BaseBackoff: 60 * time.Millisecond, MaxBackoff: time.Second,
				Jitter: 0.5, MaxRetryAfter: time.Second, BudgetMinPerSecond: 10}
			c, reg := newTestClient(t, cfg)
			code, err := get(t, c, srv.URL)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, code)
			at := log.times()
			require.Len(t, at, tt.wantCalls)
			for i := 2; i < len(at); i++ {
				assert.Greater(t, at[i].Sub(at[i-1]), at[i-1].Sub(at[i-2]), "gap %d grows", i)
			}
			assert.GreaterOrEqual(t, at[1].Sub(at[0]), 30*time.Millisecond, "first gap at least half the base backoff")
			accepted, _, _ := srv.counts()
			assert.Equal(t, 1, accepted, "discarded bodies were drained: the connection was reused")
			assert.Equal(t, float64(tt.wantCalls-1), testutil.ToFloat64(c.m.retries.WithLabelValues("svc", "503")))
			_ = reg
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var log attemptLog
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := log.add()
		switch {
		case r.URL.Path == "/too-long":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		case n == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	cfg := testConfig(srv.URL)
	cfg.Retry = RetryConfig{MaxAttempts: 3, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Jitter: 1, MaxRetryAfter: 2 * time.Second, BudgetMinPerSecond: 10}
	c, _ := newTestClient(t, cfg)

	code, err := get(t, c, srv.URL+"/once")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	at := log.times()
	require.Len(t, at, 2)
	assert.GreaterOrEqual(t, at[1].Sub(at[0]), 950*time.Millisecond, "waited the Retry-After second, not the 10ms backoff")

	code, err = get(t, c, srv.URL+"/too-long")
	require.NoError(t, err)
	assert.Equal(t, http.StatusTooManyRequests, code, "a Retry-After beyond the ceiling is handed back, not retried early")
	assert.Len(t, log.times(), 3)
	assert.Equal(t, 1.0, testutil.ToFloat64(c.m.retriesDenied.WithLabelValues("svc", "retry_after")))
}

// resetAfterProcessing reads the request, records it, then kills the
// connection without answering: the server processed a charge the client
// never hears about.
func resetAfterProcessing(log *attemptLog, resetFirst int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if log.add() > resetFirst {
			_, _ = io.WriteString(w, "charged")
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST
		}
		_ = conn.Close()
	})
}

func TestPostWithoutIdempotencyKeyIsNotRetried(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		wantErr   bool
		wantCalls int
	}{
		{"no key: one attempt, error to the caller", "", true, 1},
		{"with key: retried", "order-1", false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log attemptLog
			srv := newCountingServer(t, resetAfterProcessing(&log, 1))
			cfg := testConfig(srv.URL)
			cfg.Retry = RetryConfig{MaxAttempts: 3, BaseBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
				Jitter: 1, BudgetMinPerSecond: 10}
			c, _ := newTestClient(t, cfg)
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/charges", strings.NewReader(`{"amount":100}`))
			require.NoError(t, err)
			if tt.key != "" {
				req.Header.Set("Idempotency-Key", tt.key)
			}
			resp, err := c.Do(req)
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
			}
			assert.Len(t, log.times(), tt.wantCalls, "attempts the server saw")
		})
	}
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var hits atomic.Int32
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	clk := newFakeClock()
	var mu sync.Mutex
	var seen []transition
	cfg := testConfig(srv.URL)
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 3, OpenDelay: 5 * time.Second, HalfOpenProbes: 1, ProbeSuccesses: 2}
	c, _ := newTestClient(t, cfg, WithClock(clk), WithStateChange(func(svc string, from, to BreakerState) {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, "svc", svc)
		seen = append(seen, transition{from, to})
	}))
	gauge := func() float64 { return testutil.ToFloat64(c.m.breakerState.WithLabelValues("svc")) }

	for range 3 {
		code, err := get(t, c, srv.URL)
		require.NoError(t, err)
		require.Equal(t, 500, code)
	}
	assert.Equal(t, StateOpen, c.BreakerState())
	assert.Equal(t, float64(StateOpen), gauge())

	before := hits.Load()
	start := time.Now()
	_, err := get(t, c, srv.URL)
	require.ErrorIs(t, err, ErrCircuitOpen)
	assert.Less(t, time.Since(start), time.Second, "fails fast")
	assert.Equal(t, before, hits.Load(), "the open breaker did not touch the network")

	failing.Store(false)
	clk.Advance(5 * time.Second)
	code, err := get(t, c, srv.URL) // probe 1
	require.NoError(t, err)
	require.Equal(t, 200, code)
	assert.Equal(t, StateHalfOpen, c.BreakerState())
	assert.Equal(t, float64(StateHalfOpen), gauge())
	code, err = get(t, c, srv.URL) // probe 2
	require.NoError(t, err)
	require.Equal(t, 200, code)
	assert.Equal(t, StateClosed, c.BreakerState())
	assert.Equal(t, float64(StateClosed), gauge())

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []transition{{StateClosed, StateOpen}, {StateOpen, StateHalfOpen}, {StateHalfOpen, StateClosed}}, seen)
}

func TestBreakerIgnores4xx(t *testing.T) {
	srv := newCountingServer(t, http.NotFoundHandler())
	cfg := testConfig(srv.URL)
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 2, OpenDelay: time.Minute}
	c, _ := newTestClient(t, cfg)
	for range 20 {
		code, err := get(t, c, srv.URL)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, code)
	}
	assert.Equal(t, StateClosed, c.BreakerState())
}

func TestWarmPreDialsMinConns(t *testing.T) {
	srv := newCountingServer(t, okHandler)
	cfg := testConfig(srv.URL)
	cfg.MinConns, cfg.MaxConnsPerHost, cfg.MaxIdleConns = 3, 4, 4
	c, _ := newTestClient(t, cfg)
	accepted, _, _ := srv.counts()
	require.Zero(t, accepted, "construction opens nothing")

	require.NoError(t, c.Warm(context.Background()))
	accepted, open, _ := srv.counts()
	assert.Equal(t, 3, accepted)
	assert.Equal(t, 3, open)
	assert.Equal(t, ConnStats{Open: 3, Idle: 3, Opened: 3}, c.Stats())

	require.NoError(t, c.Warm(context.Background()))
	accepted, _, _ = srv.counts()
	assert.Equal(t, 3, accepted, "already warm: nothing more dialled")

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _, _ = get(t, c, srv.URL) })
	}
	wg.Wait()
	accepted, _, _ = srv.counts()
	assert.Equal(t, 3, accepted, "calls used the warm connections")
}

func TestWarmIntervalKeepsMinConns(t *testing.T) {
	srv := newCountingServer(t, okHandler)
	cfg := testConfig(srv.URL)
	cfg.MinConns, cfg.WarmInterval = 2, 20*time.Millisecond
	c, _ := newTestClient(t, cfg)
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 2 }, "background warm")
	c.CloseIdleConnections()
	eventually(t, 5*time.Second, func() bool { a, open, _ := srv.counts(); return a >= 4 && open == 2 }, "re-warmed after the idle close")
	require.NoError(t, c.Close())
	c.CloseIdleConnections()
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 0 }, "Close stopped the warmer")
}

func TestMetricsExact(t *testing.T) {
	unblock := make(chan struct{})
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			select {
			case <-unblock:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	cfg := testConfig(srv.URL)
	cfg.MaxConnsPerHost, cfg.MaxIdleConns = 6, 6
	c, _ := newTestClient(t, cfg)
	host := strings.TrimPrefix(srv.URL, "http://")
	active := func() float64 { return testutil.ToFloat64(c.m.connsActive.WithLabelValues("svc", host)) }
	idle := func() float64 { return testutil.ToFloat64(c.m.connsIdle.WithLabelValues("svc", host)) }

	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 20 {
				_, _ = get(t, c, srv.URL)
			}
		})
	}
	wg.Wait()
	_, open, _ := srv.counts()
	require.Positive(t, open)
	assert.Equal(t, float64(open), active()+idle(), "active+idle == server-side open")
	assert.Zero(t, active())

	// Hold three bodies open: exactly three active.
	var bodies []io.ReadCloser
	for range 3 {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/hold", nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		bodies = append(bodies, resp.Body)
	}
	_, open, _ = srv.counts()
	assert.Equal(t, 3.0, active())
	assert.Equal(t, float64(open), active()+idle())
	assert.Equal(t, 3, c.Stats().Active)
	close(unblock)
	for _, b := range bodies {
		_, _ = io.Copy(io.Discard, b)
		require.NoError(t, b.Close())
	}
	assert.Zero(t, active())

	c.CloseIdleConnections()
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 0 }, "server saw every close")
	assert.Zero(t, active()+idle())
	opened := testutil.ToFloat64(c.m.connsOpened.WithLabelValues("svc", host))
	closed := testutil.ToFloat64(c.m.connsClosed.WithLabelValues("svc", host))
	accepted, _, _ := srv.counts()
	assert.Equal(t, float64(accepted), opened)
	assert.Equal(t, opened, closed)
}

func TestRequestTimeoutCoversBodyRead(t *testing.T) {
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "start")
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	}))
	cfg := testConfig(srv.URL)
	cfg.RequestTimeout = 200 * time.Millisecond
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1, OpenDelay: time.Minute}
	for _, withCancel := range []bool{false, true} {
		c, _ := newTestClient(t, cfg)
		ctx := context.Background()
		if withCancel {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			t.Cleanup(cancel)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		start := time.Now()
		resp, err := c.Do(req)
		require.NoError(t, err, "headers arrive in time")
		_, err = io.ReadAll(resp.Body)
		require.Error(t, err, "the body read is cut by RequestTimeout")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, resp.Body.Close())
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Equal(t, StateOpen, c.BreakerState(), "a timed-out body counts as a failure")
		assert.Equal(t, 0, len(c.sem), "the slot was released")
	}
}

// A caller that walks away (cancelling, with or without a cause) says
// nothing about the service: its calls never open the breaker.
func TestCallerCancelDoesNotTripBreaker(t *testing.T) {
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	}))
	cfg := testConfig(srv.URL)
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1, OpenDelay: time.Minute}
	gaveUp := errors.New("the caller gave up")
	for name, cancel := range map[string]func(context.CancelCauseFunc){
		"cancel":          func(f context.CancelCauseFunc) { f(nil) },
		"cancel, a cause": func(f context.CancelCauseFunc) { f(gaveUp) },
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := newTestClient(t, cfg)
			for range 3 {
				ctx, f := context.WithCancelCause(context.Background())
				timer := time.AfterFunc(20*time.Millisecond, func() { cancel(f) })
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
				require.NoError(t, err)
				_, err = c.Do(req)
				timer.Stop()
				f(nil)
				require.Error(t, err)
				assert.Equal(t, StateClosed, c.BreakerState(), "%v", err)
			}
		})
	}
}

func TestTimeoutsAreHonoured(t *testing.T) {
	t.Run("response header timeout", func(t *testing.T) {
		srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		}))
		cfg := testConfig(srv.URL)
		cfg.ResponseHeaderTimeout = 100 * time.Millisecond
		c, reg := newTestClient(t, cfg)
		start := time.Now()
		_, err := get(t, c, srv.URL)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "timeout awaiting response headers")
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Equal(t, 1, testutil.CollectAndCount(c.m.connErrors))
		_ = reg
	})
	t.Run("tls handshake timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		var conns sync.WaitGroup
		t.Cleanup(conns.Wait)
		conns.Go(func() { // accepts and never speaks TLS
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = io.Copy(io.Discard, conn)
		})
		cfg := testConfig("https://" + ln.Addr().String())
		cfg.TLSHandshakeTimeout = 100 * time.Millisecond
		c, _ := newTestClient(t, cfg)
		start := time.Now()
		_, err = get(t, c, "https://"+ln.Addr().String())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "TLS handshake timeout")
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Equal(t, 0, c.Stats().Open, "the failed connection was closed and counted")
	})
	t.Run("connect timeout bounds the dial", func(t *testing.T) {
		cfg := testConfig("http://127.0.0.1:1")
		cfg.ConnectTimeout = 150 * time.Millisecond
		c, _ := newTestClient(t, cfg)
		// The transport's dialer carries the configured timeout; a refused
		// loopback port fails at once, so this checks wiring and the error kind.
		_, err := get(t, c, "http://127.0.0.1:1")
		require.Error(t, err)
		assert.Equal(t, "refused", errorKind(err))
		assert.Equal(t, 1.0, testutil.ToFloat64(c.m.connErrors.WithLabelValues("svc", "refused")))
	})
}

func TestIdleLimitsAndTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	cfg := testConfig(srv.URL)
	cfg.MaxConnsPerHost, cfg.MaxIdleConns, cfg.IdleTimeout = 4, 2, 300*time.Millisecond
	c, _ := newTestClient(t, cfg)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { _, _ = get(t, c, srv.URL+"/wait") })
	}
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 4 }, "four busy connections")
	close(release)
	wg.Wait()
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 2 }, "MaxIdleConns keeps two")
	assert.LessOrEqual(t, c.Stats().Idle, 2)
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 0 }, "IdleTimeout closes the rest")
	assert.Equal(t, 0, c.Stats().Open)
}

func TestHTTP2OnOffAndRootCAs(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		srv := startCountingServer(t, okHandler, true, true)
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		cfg := testConfig(srv.URL)
		cfg.HTTP2, cfg.RootCAs = h2, pool
		c, _ := newTestClient(t, cfg)
		var wg sync.WaitGroup
		var protos sync.Map
		for range 8 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				resp, err := c.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				protos.Store(resp.ProtoMajor, true)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			})
		}
		wg.Wait()
		want := 1
		if h2 {
			want = 2
		}
		_, ok := protos.Load(want)
		assert.True(t, ok, "HTTP/%d negotiated (HTTP2=%v)", want, h2)
		eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == c.Stats().Open },
			"exact count under TLS (HTTP2=%v)", h2)
		assert.Zero(t, c.Stats().Active)
	}

	t.Run("unknown CA refused", func(t *testing.T) {
		srv := startCountingServer(t, okHandler, true, false)
		cfg := testConfig(srv.URL)
		cfg.RootCAs = x509.NewCertPool() // trusts nothing
		c, _ := newTestClient(t, cfg)
		_, err := get(t, c, srv.URL)
		require.Error(t, err)
		assert.Equal(t, "tls", errorKind(err))
	})
}

func TestClosedClientRefusesCalls(t *testing.T) {
	srv := newCountingServer(t, okHandler)
	c, _ := newTestClient(t, testConfig(srv.URL))
	_, err := get(t, c, srv.URL)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	_, err = get(t, c, srv.URL)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, c.Warm(context.Background()), ErrClosed)
	eventually(t, 5*time.Second, func() bool { _, open, _ := srv.counts(); return open == 0 }, "Close closed idle connections")
	require.NoError(t, c.Close(), "Close twice is fine")
}

func TestRetryRespectsDeadline(t *testing.T) {
	var log attemptLog
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	cfg := testConfig(srv.URL)
	cfg.RequestTimeout = 300 * time.Millisecond
	cfg.Retry = RetryConfig{MaxAttempts: 10, BaseBackoff: 200 * time.Millisecond, MaxBackoff: time.Second, BudgetMinPerSecond: 10}
	c, _ := newTestClient(t, cfg)
	start := time.Now()
	code, err := get(t, c, srv.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code, "the last response is returned")
	assert.Less(t, time.Since(start), 300*time.Millisecond+500*time.Millisecond)
	assert.Len(t, log.times(), 2, "200ms then 400ms of backoff: only one retry fits in 300ms")
}

func TestRetryBudgetStopsRetryStorm(t *testing.T) {
	var log attemptLog
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	cfg := testConfig(srv.URL)
	clk := newFakeClock() // the budget's per-second minimum never refills
	cfg.Retry = RetryConfig{MaxAttempts: 3, BudgetRatio: 0.2, BudgetMinPerSecond: 0}
	c, _ := newTestClient(t, cfg, WithClock(clk))
	for range 50 {
		_, err := get(t, c, srv.URL)
		require.NoError(t, err)
	}
	assert.Equal(t, 60, len(log.times()), "50 calls at 20%% budget: 10 retries, not 100")
}

func TestDoSatisfiesTheHarnessContract(t *testing.T) {
	var _ interface {
		Do(*http.Request) (*http.Response, error)
	} = (*Client)(nil)
	var _ interface{ CloseIdleConnections() } = (*Client)(nil)
	var _ interface{ Close() error } = (*Client)(nil)
	assert.True(t, errors.Is(ErrPoolExhausted, ErrPoolExhausted))
}

// The memory goal of the benchmarks, kept as a regression test: allocation
// counts do not depend on the machine's load. Both sides count every
// allocation of the process (the server's included), so only the client's
// own work differs.
func TestClientAllocatesAtMostThreeMorePerCallThanBareTransport(t *testing.T) {
	tr, c, req := bareAndClient(t)
	bare := testing.AllocsPerRun(500, func() { benchCall(t, tr.RoundTrip, req) })
	client := testing.AllocsPerRun(500, func() { benchCall(t, c.Do, req) })
	t.Logf("allocations per call: bare transport %.0f, client %.0f", bare, client)
	assert.LessOrEqual(t, client, bare+3, "the client adds more than 3 allocations per call")
}
