package pooledclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idAttempts is the server-side truth of the retry contract: when each
// attempt of each X-Request-ID arrived.
type idAttempts struct {
	mu  sync.Mutex
	ids map[string][]time.Time
}

func newIDAttempts() *idAttempts { return &idAttempts{ids: map[string][]time.Time{}} }

// arrive records one attempt of id and returns its number (1 for the first).
func (l *idAttempts) arrive(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids[id] = append(l.ids[id], time.Now())
	return len(l.ids[id])
}

func (l *idAttempts) snapshot() map[string][]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]time.Time, len(l.ids))
	for id, ts := range l.ids {
		out[id] = slices.Clone(ts)
	}
	return out
}

// resetAfterRead aborts the connection of a request the server has read:
// an RST (linger 0), the "server processed it, then the connection died"
// case that makes net/http replay a replayable request on its own.
func resetAfterRead(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Errorf("response writer %T cannot be hijacked", w)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func replayConfig(base string, maxAttempts int) Config {
	cfg := testConfig(base)
	cfg.MaxConnsPerHost, cfg.MaxIdleConns, cfg.MinConns = 8, 8, 8
	cfg.Retry = RetryConfig{MaxAttempts: maxAttempts, BaseBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Jitter: 0.5, BudgetRatio: 1, BudgetMinPerSecond: 1000}
	cfg.Seed = 7
	return cfg
}

// Every attempt of every call dies after the server read it. With a warm
// pool, net/http alone would replay each one on every idle connection in
// turn; the client must hold the server to exactly MaxAttempts attempts and
// surface the connection error itself.
func TestTransportReplaysCountAgainstMaxAttempts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		method      string
		idemKey     bool
		maxAttempts int
		want        int // attempts the server must see
	}{
		{name: "GET without retries", method: http.MethodGet, maxAttempts: 1, want: 1},
		{name: "GET with 3 attempts", method: http.MethodGet, maxAttempts: 3, want: 3},
		{name: "HEAD with 2 attempts", method: http.MethodHead, maxAttempts: 2, want: 2},
		{name: "keyed POST with 2 attempts", method: http.MethodPost, idemKey: true, maxAttempts: 2, want: 2},
		{name: "POST without key is never retried", method: http.MethodPost, maxAttempts: 3, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newIDAttempts()
			srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id := r.Header.Get("X-Request-ID")
				if id == "" { // Warm's HEADs
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				log.arrive(id)
				resetAfterRead(t, w)
			}))
			cl, reg := newTestClient(t, replayConfig(srv.URL, tc.maxAttempts))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			t.Cleanup(cancel)
			require.NoError(t, cl.Warm(ctx))
			require.Equal(t, 8, cl.Stats().Open, "the pool is warm, so the transport has reused connections to replay on")

			var body io.Reader
			if tc.method == http.MethodPost {
				body = strings.NewReader(`{"amount":1}`)
			}
			req, err := http.NewRequestWithContext(ctx, tc.method, srv.URL+"/v1/items/A-1", body)
			require.NoError(t, err)
			req.Header.Set("X-Request-ID", "call-1")
			if tc.idemKey {
				req.Header.Set("Idempotency-Key", "key-1")
			}
			resp, err := cl.Do(req)
			if resp != nil {
				drainAndClose(resp.Body)
			}
			require.Error(t, err, "every attempt was reset")
			assert.False(t, errors.Is(err, context.Canceled), "the connection error is surfaced, not a cancellation: %v", err)
			assert.Contains(t, []string{"reset", "eof"}, errorKind(err), "classified as a connection error: %v", err)

			assert.Len(t, log.snapshot()["call-1"], tc.want, "attempts the server saw")
			assert.Zero(t, cl.Stats().Active, "no connection left active")
			assert.Zero(t, len(cl.sem), "every connection slot released")
			if tc.want > 1 || tc.idemKey || tc.method != http.MethodPost {
				assert.Positive(t, replays(t, reg, "refused"), "the transport tried to replay and was refused")
			}
		})
	}
}

// replays reads http_client_transport_replays_total{outcome}.
func replays(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != "http_client_transport_replays_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					v += m.GetCounter().GetValue()
				}
			}
		}
	}
	return v
}

// End to end under concurrency: the server resets 30% of GETs after reading
// them, chosen per (request id, attempt) from a seed, across many pooled
// connections. The server must never see more than MaxAttempts attempts of
// one call, attempts of one call must be spaced by at least the minimum
// backoff, and most calls must still succeed.
func TestResetAfterReadUnderConcurrency(t *testing.T) {
	const (
		seed        = 20240601
		resetShare  = 0.3
		workers     = 16
		callsEach   = 30
		maxAttempts = 3
		baseBackoff = 4 * time.Millisecond
		jitter      = 0.5
		minGap      = time.Duration(float64(baseBackoff) * (1 - jitter)) // the shortest first backoff
	)
	log := newIDAttempts()
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if id == "" {
			return
		}
		n := log.arrive(id)
		num, err := strconv.ParseUint(strings.TrimPrefix(id, "call-"), 10, 64)
		if err != nil {
			t.Errorf("request id %q: %v", id, err)
			return
		}
		if rand.New(rand.NewPCG(seed, num<<8|uint64(n))).Float64() < resetShare {
			resetAfterRead(t, w)
			return
		}
		_, _ = io.WriteString(w, `{"sku":"A-1","stock":42}`)
	}))
	cfg := testConfig(srv.URL)
	cfg.MaxConnsPerHost, cfg.MaxIdleConns, cfg.MinConns = workers, workers, workers
	cfg.Retry = RetryConfig{MaxAttempts: maxAttempts, BaseBackoff: baseBackoff, MaxBackoff: 4 * baseBackoff,
		Jitter: jitter, BudgetRatio: 1, BudgetMinPerSecond: 1000}
	cfg.Seed = seed
	cl, reg := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	require.NoError(t, cl.Warm(ctx))

	var (
		mu     sync.Mutex
		ok     int
		failed []error
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range callsEach {
				if ctx.Err() != nil {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/items/A-1", nil)
				if err != nil {
					t.Errorf("new request: %v", err)
					return
				}
				req.Header.Set("X-Request-ID", fmt.Sprintf("call-%d", w*callsEach+i))
				resp, err := cl.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				mu.Lock()
				if err == nil {
					ok++
				} else {
					failed = append(failed, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, ctx.Err(), "the calls did not finish in time")

	seen := log.snapshot()
	require.Len(t, seen, workers*callsEach, "every call reached the server")
	var gaps []time.Duration
	worst, retried := 0, 0
	for id, ts := range seen {
		worst = max(worst, len(ts))
		assert.LessOrEqual(t, len(ts), maxAttempts, "server attempts of %s", id)
		if len(ts) > 1 {
			retried++
		}
		for i := 1; i < len(ts); i++ {
			gaps = append(gaps, ts[i].Sub(ts[i-1]))
		}
	}
	t.Logf("%d calls: %d ok, %d failed; %d retried, worst %d attempts; %d gaps; refused replays %v",
		len(seen), ok, len(failed), retried, worst, len(gaps), replays(t, reg, "refused"))
	require.NotEmpty(t, gaps, "with 30%% resets some calls must have been retried")
	slices.Sort(gaps)
	// Attempt k+1 leaves only after attempt k failed and the backoff slept,
	// so every gap is at least the shortest backoff: a lower bound that
	// scheduling noise can only widen.
	assert.GreaterOrEqual(t, gaps[0], minGap, "shortest gap between attempts of one call")
	assert.Greater(t, gaps[len(gaps)/2], time.Millisecond, "median gap between attempts of one call")
	assert.GreaterOrEqual(t, ok, workers*callsEach*8/10, "most calls succeed: 30%% resets, 3 attempts")
	assert.Positive(t, replays(t, reg, "refused"), "the transport tried to replay on reused connections")
	for _, err := range failed {
		assert.False(t, errors.Is(err, context.Canceled), "a failed call reports its connection error: %v", err)
		assert.Contains(t, []string{"reset", "eof"}, errorKind(err), "classified as a connection error: %v", err)
	}

	assert.Zero(t, cl.Stats().Active, "no connection left active")
	assert.Zero(t, len(cl.sem), "every connection slot released")
	st := cl.Stats()
	assert.Equal(t, int64(st.Open), st.Opened-st.Closed, "open = opened - closed")
	assert.LessOrEqual(t, st.Open, workers, "the pool stayed bounded")
	_, _, peak := srv.counts()
	assert.LessOrEqual(t, peak, workers, "the server never saw more connections than MaxConnsPerHost")
}
