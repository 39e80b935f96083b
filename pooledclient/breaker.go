package pooledclient

import (
	"sync"
	"sync/atomic"
	"time"
)

// BreakerState is the state of a circuit breaker.
type BreakerState int32

const (
	StateClosed   BreakerState = iota // calls flow; outcomes are counted
	StateHalfOpen                     // a few probes test the service
	StateOpen                         // calls fail fast with ErrCircuitOpen
)

func (s BreakerState) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	}
	return "unknown"
}

// BreakerConfig says when a service's breaker trips and how it recovers.
// The breaker trips on ConsecutiveFailures OR on FailureRate, whichever
// fires first; set one to zero to use only the other.
type BreakerConfig struct {
	// Disabled turns the breaker off: every call goes to the network.
	Disabled bool
	// ConsecutiveFailures trips the breaker after this many failures in a row
	// while closed (0: no consecutive rule).
	ConsecutiveFailures int
	// FailureRate trips the breaker when failures/calls over the last Window
	// reach it (0: no rate rule), once at least MinCalls calls were seen.
	FailureRate float64
	Window      time.Duration
	// WindowBuckets is the resolution of the sliding window (default 10).
	WindowBuckets int
	MinCalls      int
	// OpenDelay is how long the breaker stays open before it lets probes in.
	OpenDelay time.Duration
	// HalfOpenProbes is the most probes in flight at once while half-open.
	HalfOpenProbes int
	// ProbeSuccesses closes the breaker after this many successful probes
	// (default HalfOpenProbes). Any probe failure re-opens it at once.
	ProbeSuccesses int
	// IsFailure classifies an attempt's outcome (status 0 when err != nil);
	// nil means DefaultIsFailure.
	IsFailure func(status int, err error) bool
}

// breakerToken is what Allow hands out and Done takes back. It is a value so
// the success path allocates nothing (gobreaker's two-step Allow returns a
// closure, one allocation per call).
type breakerToken struct {
	gen   uint64
	probe bool
	ok    bool // false when the breaker is disabled
}

type windowBucket struct {
	epoch    int64 // which bucket period this slot currently holds
	calls    int64
	failures int64
}

// breaker is a closed/open/half-open circuit breaker with an injected clock.
//
// Why not sony/gobreaker/v2 v2.4.0: it reads time.Now directly (no clock to
// inject in tests), its half-open limit counts every request admitted since
// half-open began rather than probes in flight and is the same number as the
// successes needed to close, and its two-step API allocates a closure per
// call. The semantics here follow gobreaker's otherwise.
type breaker struct {
	cfg      BreakerConfig
	clock    Clock
	onChange func(from, to BreakerState)

	// word packs generation<<2 | state so Allow's closed fast path is one
	// atomic load and no lock.
	word atomic.Uint64

	mu             sync.Mutex
	consecutive    int
	buckets        []windowBucket
	bucketDur      int64
	openedAt       time.Time
	probesInFlight int
	probeOK        int
}

func newBreaker(cfg BreakerConfig, clock Clock, onChange func(from, to BreakerState)) *breaker {
	if cfg.WindowBuckets <= 0 {
		cfg.WindowBuckets = 10
	}
	if cfg.HalfOpenProbes <= 0 {
		cfg.HalfOpenProbes = 1
	}
	if cfg.ProbeSuccesses <= 0 {
		cfg.ProbeSuccesses = cfg.HalfOpenProbes
	}
	b := &breaker{cfg: cfg, clock: clock, onChange: onChange}
	if cfg.FailureRate > 0 && cfg.Window > 0 {
		b.buckets = make([]windowBucket, cfg.WindowBuckets)
		b.bucketDur = int64(cfg.Window) / int64(cfg.WindowBuckets)
		if b.bucketDur <= 0 {
			b.bucketDur = 1
		}
		for i := range b.buckets {
			b.buckets[i].epoch = -1
		}
	}
	b.word.Store(uint64(StateClosed))
	return b
}

// State returns the current state, moving open to half-open when the open
// delay has passed.
func (b *breaker) State() BreakerState {
	w := b.word.Load()
	if BreakerState(w&3) != StateOpen {
		return BreakerState(w & 3)
	}
	b.mu.Lock()
	from, to := b.maybeHalfOpenLocked(b.clock.Now())
	s := BreakerState(b.word.Load() & 3)
	b.mu.Unlock()
	b.notify(from, to)
	return s
}

// Allow admits a call or refuses it with ErrCircuitOpen.
func (b *breaker) Allow() (breakerToken, error) {
	if b.cfg.Disabled {
		return breakerToken{}, nil
	}
	w := b.word.Load()
	if BreakerState(w&3) == StateClosed {
		return breakerToken{gen: w >> 2, ok: true}, nil
	}
	b.mu.Lock()
	from, to := b.maybeHalfOpenLocked(b.clock.Now())
	w = b.word.Load()
	var tok breakerToken
	err := ErrCircuitOpen
	switch BreakerState(w & 3) {
	case StateClosed:
		tok, err = breakerToken{gen: w >> 2, ok: true}, nil
	case StateHalfOpen:
		if b.probesInFlight < b.cfg.HalfOpenProbes {
			b.probesInFlight++
			tok, err = breakerToken{gen: w >> 2, probe: true, ok: true}, nil
		}
	}
	b.mu.Unlock()
	b.notify(from, to)
	return tok, err
}

// Cancel returns a token whose call never reached the service (for example
// the pool was exhausted): it counts neither as success nor failure.
func (b *breaker) Cancel(tok breakerToken) {
	if !tok.ok || !tok.probe {
		return
	}
	b.mu.Lock()
	if b.word.Load()>>2 == tok.gen && b.probesInFlight > 0 {
		b.probesInFlight--
	}
	b.mu.Unlock()
}

// Done records the outcome of an admitted call. Outcomes of calls admitted
// in an earlier generation (before a state change) are ignored.
func (b *breaker) Done(tok breakerToken, failed bool) {
	if !tok.ok {
		return
	}
	b.mu.Lock()
	w := b.word.Load()
	if w>>2 != tok.gen {
		b.mu.Unlock()
		return
	}
	var from, to BreakerState
	switch BreakerState(w & 3) {
	case StateClosed:
		if b.buckets != nil {
			b.record(b.clock.Now(), failed)
		}
		if !failed {
			b.consecutive = 0
			b.mu.Unlock()
			return
		}
		b.consecutive++
		if b.shouldTripLocked() {
			from, to = b.setStateLocked(StateOpen, b.clock.Now())
		}
	case StateHalfOpen:
		if tok.probe && b.probesInFlight > 0 {
			b.probesInFlight--
		}
		if failed {
			from, to = b.setStateLocked(StateOpen, b.clock.Now())
		} else {
			b.probeOK++
			if b.probeOK >= b.cfg.ProbeSuccesses {
				from, to = b.setStateLocked(StateClosed, b.clock.Now())
			}
		}
	}
	b.mu.Unlock()
	b.notify(from, to)
}

func (b *breaker) record(now time.Time, failed bool) {
	epoch := now.UnixNano() / b.bucketDur
	i := int(epoch % int64(len(b.buckets)))
	bk := &b.buckets[i]
	if bk.epoch != epoch {
		*bk = windowBucket{epoch: epoch}
	}
	bk.calls++
	if failed {
		bk.failures++
	}
}

func (b *breaker) shouldTripLocked() bool {
	if b.cfg.ConsecutiveFailures > 0 && b.consecutive >= b.cfg.ConsecutiveFailures {
		return true
	}
	if b.buckets == nil {
		return false
	}
	calls, failures := b.windowCountsLocked(b.clock.Now())
	if calls < int64(b.cfg.MinCalls) || calls == 0 {
		return false
	}
	return float64(failures)/float64(calls) >= b.cfg.FailureRate
}

func (b *breaker) windowCountsLocked(now time.Time) (calls, failures int64) {
	epoch := now.UnixNano() / b.bucketDur
	oldest := epoch - int64(len(b.buckets)) + 1
	for _, bk := range b.buckets {
		if bk.epoch >= oldest && bk.epoch <= epoch {
			calls += bk.calls
			failures += bk.failures
		}
	}
	return calls, failures
}

func (b *breaker) maybeHalfOpenLocked(now time.Time) (from, to BreakerState) {
	if BreakerState(b.word.Load()&3) == StateOpen && !now.Before(b.openedAt.Add(b.cfg.OpenDelay)) {
		return b.setStateLocked(StateHalfOpen, now)
	}
	return 0, 0
}

// setStateLocked moves to a new state and generation; it returns the
// transition for notify, which runs after the lock is released so a callback
// may call back into the breaker.
func (b *breaker) setStateLocked(s BreakerState, now time.Time) (from, to BreakerState) {
	w := b.word.Load()
	from = BreakerState(w & 3)
	b.word.Store(((w>>2)+1)<<2 | uint64(s))
	b.consecutive = 0
	b.probesInFlight = 0
	b.probeOK = 0
	for i := range b.buckets {
		b.buckets[i] = windowBucket{epoch: -1}
	}
	if s == StateOpen {
		b.openedAt = now
	}
	return from, s
}

func (b *breaker) notify(from, to BreakerState) {
	if from == to || b.onChange == nil {
		return
	}
	b.onChange(from, to)
}
