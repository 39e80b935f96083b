package pooledclient

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackoffGrowsAndCaps(t *testing.T) {
	b := newBackoff(RetryConfig{BaseBackoff: 10 * time.Millisecond, MaxBackoff: 70 * time.Millisecond, Jitter: 0}, 1)
	want := []time.Duration{10, 20, 40, 70, 70, 70}
	for i, w := range want {
		assert.Equal(t, w*time.Millisecond, b.delay(i+1), "retry %d", i+1)
	}
}

func TestBackoffFullJitterStaysWithinBoundsAndReplays(t *testing.T) {
	cfg := RetryConfig{BaseBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, Jitter: 1}
	a, b := newBackoff(cfg, 42), newBackoff(cfg, 42)
	var sum [5]time.Duration
	const rounds = 2000
	for range rounds {
		for n := 1; n <= 5; n++ {
			d := a.delay(n)
			require.Equal(t, d, b.delay(n), "same seed, same delays")
			ceil := min(10*time.Millisecond<<(n-1), 80*time.Millisecond)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, ceil)
			sum[n-1] += d
		}
	}
	// Full jitter grows in expectation: the mean of retry n is about half its ceiling.
	for n := 1; n < 4; n++ {
		assert.Less(t, sum[n-1], sum[n], "mean delay of retry %d below retry %d", n, n+1)
	}
	other := newBackoff(cfg, 43)
	diff := false
	for range 10 {
		diff = diff || other.delay(3) != a.delay(3)
	}
	assert.True(t, diff, "another seed draws other delays")
}

func TestBackoffEqualJitterNeverShrinks(t *testing.T) {
	b := newBackoff(RetryConfig{BaseBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, Jitter: 0.5}, 7)
	for range 500 {
		prev := time.Duration(0)
		for n := 1; n <= 6; n++ {
			d := b.delay(n)
			require.GreaterOrEqual(t, d, prev)
			prev = d
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		got, ok := retryAfter(h, now)
		assert.Equal(t, tt.ok, ok, "%q", tt.value)
		assert.Equal(t, tt.want, got, "%q", tt.value)
	}
}

func TestReplayable(t *testing.T) {
	tests := []struct {
		method string
		key    string
		body   string
		getter bool
		want   bool
	}{
		{http.MethodGet, "", "", false, true},
		{http.MethodHead, "", "", false, true},
		{http.MethodOptions, "", "", false, true},
		{http.MethodDelete, "", "", false, true},
		{http.MethodPut, "", "x", true, true},
		{http.MethodPut, "", "x", false, false}, // a body that cannot be rewound
		{http.MethodPost, "", "x", true, false}, // no key: never
		{http.MethodPatch, "", "x", true, false},
		{http.MethodPost, "k1", "x", true, true},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, "http://127.0.0.1:1/x", nil)
		require.NoError(t, err)
		if tt.body != "" {
			req.Body = readCloser{strings.NewReader(tt.body)}
			if tt.getter {
				req.GetBody = func() (io.ReadCloser, error) { return readCloser{strings.NewReader(tt.body)}, nil }
			}
		}
		if tt.key != "" {
			req.Header.Set("Idempotency-Key", tt.key)
		}
		assert.Equal(t, tt.want, replayable(req), "%s key=%q body=%q getter=%v", tt.method, tt.key, tt.body, tt.getter)
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func TestRetryBudget(t *testing.T) {
	t.Run("ratio of calls", func(t *testing.T) {
		clk := newFakeClock()
		b := newRetryBudget(RetryConfig{BudgetRatio: 0.2}, clk)
		assert.False(t, b.withdraw(), "no calls yet, no minimum: nothing to spend")
		for range 10 {
			b.deposit()
		}
		assert.True(t, b.withdraw())
		assert.True(t, b.withdraw())
		assert.False(t, b.withdraw(), "ten calls at 20% buy two retries")
	})
	t.Run("minimum per second refills over time", func(t *testing.T) {
		clk := newFakeClock()
		b := newRetryBudget(RetryConfig{BudgetRatio: 0, BudgetMinPerSecond: 2}, clk)
		assert.True(t, b.withdraw())
		assert.True(t, b.withdraw())
		assert.False(t, b.withdraw())
		clk.Advance(500 * time.Millisecond)
		assert.True(t, b.withdraw())
		assert.False(t, b.withdraw())
	})
	t.Run("balance is capped", func(t *testing.T) {
		clk := newFakeClock()
		b := newRetryBudget(RetryConfig{BudgetRatio: 1}, clk)
		for range 1000 {
			b.deposit()
		}
		n := 0
		for b.withdraw() && n < 1000 {
			n++
		}
		assert.Equal(t, 10, n, "a quiet period banks at most the cap")
	})
}
