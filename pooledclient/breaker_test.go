package pooledclient

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type transition struct{ from, to BreakerState }

type recorder struct {
	mu  sync.Mutex
	got []transition
}

func (r *recorder) hook(from, to BreakerState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, transition{from, to})
}

func (r *recorder) all() []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transition(nil), r.got...)
}

func newTestBreaker(t *testing.T, cfg BreakerConfig) (*breaker, *fakeClock, *recorder) {
	t.Helper()
	clk := newFakeClock()
	rec := &recorder{}
	return newBreaker(cfg, clk, rec.hook), clk, rec
}

// run admits one call and reports its outcome.
func run(t *testing.T, b *breaker, failed bool) {
	t.Helper()
	tok, err := b.Allow()
	require.NoError(t, err)
	b.Done(tok, failed)
}

func TestBreakerConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []bool // true = failure
		want     BreakerState
	}{
		{"trips at the threshold", []bool{true, true, true}, StateOpen},
		{"below the threshold stays closed", []bool{true, true}, StateClosed},
		{"a success resets the consecutive count", []bool{true, true, false, true, true}, StateClosed},
		{"trips after the reset once enough fail again", []bool{true, true, false, true, true, true}, StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _ := newTestBreaker(t, BreakerConfig{ConsecutiveFailures: 3, OpenDelay: time.Second})
			for _, f := range tt.outcomes {
				run(t, b, f)
			}
			assert.Equal(t, tt.want, b.State())
		})
	}
}

func TestBreakerOpenFailsFastThenHalfOpens(t *testing.T) {
	b, clk, rec := newTestBreaker(t, BreakerConfig{ConsecutiveFailures: 1, OpenDelay: time.Second})
	run(t, b, true)
	require.Equal(t, StateOpen, b.State())

	_, err := b.Allow()
	require.ErrorIs(t, err, ErrCircuitOpen)

	clk.Advance(999 * time.Millisecond)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrCircuitOpen, "still open 1ms before the delay")

	clk.Advance(time.Millisecond)
	tok, err := b.Allow()
	require.NoError(t, err)
	assert.True(t, tok.probe)
	assert.Equal(t, StateHalfOpen, b.State())
	assert.Equal(t, []transition{{StateClosed, StateOpen}, {StateOpen, StateHalfOpen}}, rec.all())
}

func TestBreakerHalfOpenAdmitsAtMostNConcurrentProbes(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{ConsecutiveFailures: 1, OpenDelay: time.Second, HalfOpenProbes: 2, ProbeSuccesses: 3})
	run(t, b, true)
	clk.Advance(time.Second)

	p1, err := b.Allow()
	require.NoError(t, err)
	p2, err := b.Allow()
	require.NoError(t, err)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrCircuitOpen, "a third concurrent probe is refused")

	b.Done(p1, false) // one probe done: a slot frees up
	p3, err := b.Allow()
	require.NoError(t, err)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrCircuitOpen)

	b.Cancel(p3) // a probe that never reached the service frees its slot, counts nothing
	p4, err := b.Allow()
	require.NoError(t, err)
	assert.Equal(t, StateHalfOpen, b.State())

	b.Done(p2, false)
	assert.Equal(t, StateHalfOpen, b.State(), "two successes, three needed")
	b.Done(p4, false)
	assert.Equal(t, StateClosed, b.State(), "three probe successes close it")
}

func TestBreakerHalfOpenFailureReopensAtOnce(t *testing.T) {
	b, clk, rec := newTestBreaker(t, BreakerConfig{ConsecutiveFailures: 1, OpenDelay: time.Second, HalfOpenProbes: 3, ProbeSuccesses: 3})
	run(t, b, true)
	clk.Advance(time.Second)
	p1, err := b.Allow()
	require.NoError(t, err)
	p2, err := b.Allow()
	require.NoError(t, err)
	b.Done(p1, false)
	p3, err := b.Allow()
	require.NoError(t, err)

	b.Done(p2, true)
	assert.Equal(t, StateOpen, b.State(), "one failed probe re-opens, whatever succeeded before")
	b.Done(p3, false) // a late probe of the old generation changes nothing
	assert.Equal(t, StateOpen, b.State())
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrCircuitOpen)

	clk.Advance(999 * time.Millisecond)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrCircuitOpen, "the open delay restarts at the re-open")
	assert.Equal(t, []transition{{StateClosed, StateOpen}, {StateOpen, StateHalfOpen}, {StateHalfOpen, StateOpen}}, rec.all())
}

func TestBreakerFailureRateWindow(t *testing.T) {
	cfg := BreakerConfig{FailureRate: 0.5, Window: 10 * time.Second, WindowBuckets: 10, MinCalls: 10, OpenDelay: time.Second}
	tests := []struct {
		name      string
		successes int
		failures  int
		want      BreakerState
	}{
		{"below min calls never trips, even at 100% failures", 0, 9, StateClosed},
		{"min calls reached at 100% trips", 0, 10, StateOpen},
		{"rate below threshold stays closed", 6, 5, StateClosed},
		{"rate at threshold trips", 5, 5, StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _ := newTestBreaker(t, cfg)
			for range tt.successes {
				run(t, b, false)
			}
			for range tt.failures {
				run(t, b, true)
			}
			assert.Equal(t, tt.want, b.State())
		})
	}

	t.Run("old calls slide out of the window", func(t *testing.T) {
		b, clk, _ := newTestBreaker(t, cfg)
		for range 9 {
			run(t, b, true)
		}
		clk.Advance(11 * time.Second) // those nine are now outside the window
		for range 9 {
			run(t, b, true)
		}
		assert.Equal(t, StateClosed, b.State(), "only nine calls in the window: under MinCalls")
		run(t, b, true)
		assert.Equal(t, StateOpen, b.State())
	})
}

func TestBreakerStaleOutcomesIgnored(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{ConsecutiveFailures: 2, OpenDelay: time.Second})
	slow, err := b.Allow() // admitted while closed, reports much later
	require.NoError(t, err)
	run(t, b, true)
	run(t, b, true)
	require.Equal(t, StateOpen, b.State())
	clk.Advance(time.Second)
	probe, err := b.Allow()
	require.NoError(t, err)
	b.Done(slow, true) // from the old generation: must not re-open the half-open breaker
	assert.Equal(t, StateHalfOpen, b.State())
	b.Done(probe, false)
	assert.Equal(t, StateClosed, b.State())
}

func TestBreakerDisabled(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{Disabled: true, ConsecutiveFailures: 1})
	for range 10 {
		run(t, b, true)
	}
	assert.Equal(t, StateClosed, b.State())
}

func TestDefaultIsFailure(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   bool
	}{
		{200, nil, false}, {204, nil, false}, {400, nil, false}, {404, nil, false}, {409, nil, false},
		{429, nil, false}, {500, nil, true}, {502, nil, true}, {503, nil, true}, {504, nil, true},
		{0, ErrPoolExhausted, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, DefaultIsFailure(tt.status, tt.err), "status %d err %v", tt.status, tt.err)
	}
}

func TestBreakerFourXXNotCounted(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{ConsecutiveFailures: 2, OpenDelay: time.Second})
	for range 20 {
		tok, err := b.Allow()
		require.NoError(t, err)
		b.Done(tok, DefaultIsFailure(404, nil))
		tok, err = b.Allow()
		require.NoError(t, err)
		b.Done(tok, DefaultIsFailure(429, nil))
	}
	assert.Equal(t, StateClosed, b.State())
}

func TestBreakerSuccessPathAllocatesNothing(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{ConsecutiveFailures: 5, FailureRate: 0.5, Window: time.Second, MinCalls: 10, OpenDelay: time.Second})
	allocs := testing.AllocsPerRun(1000, func() {
		tok, err := b.Allow()
		if err == nil {
			b.Done(tok, false)
		}
	})
	assert.Zero(t, allocs)
}
