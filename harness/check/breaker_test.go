package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// breakerRun is an inventory outage (503s) from 2s to 5s against a client
// with a 1s open delay: shaped by the options below.
type breakerRun struct {
	noBreaker   bool          // every call reaches the server during the outage
	probesAt    int           // attempts let through at each half-open (every open delay)
	slowFail    time.Duration // latency of calls rejected while open
	recoverAt   time.Duration // when calls succeed again (0: 5.1s; <0: never)
	belowServer bool          // the outage is a blackhole toxic: no attempt reaches the server
}

func (r breakerRun) build() *harness.History {
	const (
		inv = "inventory"
		ms  = time.Millisecond
		sec = time.Second
	)
	b := newHB(inv)
	if r.belowServer {
		b.step(2*sec, harness.AddToxic(inv, harness.Timeout("hole", harness.Upstream, 0)))
		b.step(5*sec, harness.RemoveToxic(inv, "hole"))
	} else {
		b.outage(inv, 2*sec, 5*sec)
	}
	probes := r.probesAt
	if probes == 0 {
		probes = 3
	}
	fail := r.slowFail
	if fail == 0 {
		fail = 100 * time.Microsecond
	}
	recoverAt := r.recoverAt
	if recoverAt == 0 {
		recoverAt = 5100 * ms
	}
	b.okCalls(inv, 0, 2*sec, 10*ms, 2*ms, true, 1)
	nextProbe := 3100 * ms
	for t := 2 * sec; t < 10*sec; t += 10 * ms {
		switch {
		case t < 2100*ms || (t < 5*sec && r.noBreaker): // tripping, or no breaker at all
			seq := b.call(inv, t, 2*ms, 503, harness.ClassNone)
			if !r.belowServer {
				b.attempt(inv, seq, t, ms, 503, 1)
			}
		case recoverAt > 0 && t >= recoverAt:
			b.okCalls(inv, t, t+1, 10*ms, 2*ms, true, 1)
		case t >= nextProbe && t < 5*sec:
			for range probes {
				seq := b.call(inv, t, 2*ms, 503, harness.ClassNone)
				if !r.belowServer {
					b.attempt(inv, seq, t, ms, 503, 1)
				}
			}
			nextProbe += sec
		default:
			b.call(inv, t, fail, 0, harness.ClassCircuitOpen)
		}
	}
	return b.done()
}

func TestBreakerChecks(t *testing.T) {
	noBreaker := func() *harness.History {
		h := breakerRun{noBreaker: true}.build()
		h.Profile.Default.BreakerOpenDelay = 0
		h.Profile.Services = map[string]harness.Contract{"inventory": {}}
		return h
	}
	noFault := func() *harness.History {
		b := newHB("inventory")
		b.okCalls("inventory", 0, 5*time.Second, 10*time.Millisecond, 2*time.Millisecond, true, 1)
		return b.done()
	}
	cases := []checkCase{
		{"opens: the breaker sheds the outage", BreakerOpens{}, breakerRun{}.build, harness.StatusPass,
			[]string{"attempts reaching the server collapsed", "inventory: 6 server attempts for 254 calls"}},
		{"opens: every call keeps reaching the server", BreakerOpens{}, breakerRun{noBreaker: true}.build, harness.StatusFail,
			[]string{"inventory: 250 attempts reached the server for 250 calls during the outage (inventory fault 2s..5s, judged from 2.5s on)", "the breaker does not open"}},
		{"opens: an outage below the server, failures fast", BreakerOpens{}, breakerRun{belowServer: true}.build, harness.StatusPass,
			[]string{"only fast failure is judged"}},
		{"opens: an outage below the server, failures slow", BreakerOpens{}, breakerRun{belowServer: true, slowFail: 2 * time.Second}.build, harness.StatusFail,
			[]string{"took 2s at p50", "failing fast"}},
		{"opens: the client has no breaker", BreakerOpens{}, noBreaker, harness.StatusNotApplicable, []string{"declares no circuit breaker"}},
		{"opens: no fault", BreakerOpens{}, noFault, harness.StatusNotApplicable, []string{"no fault window"}},

		{"half-open: a few probes", BreakerHalfOpen{}, breakerRun{}.build, harness.StatusPass, []string{"at most 3 attempts reached the server within any 500ms"}},
		{"half-open: lets every call through", BreakerHalfOpen{}, breakerRun{probesAt: 32}.build, harness.StatusFail,
			[]string{"inventory: 32 attempts reached the server within 500ms from 3.1s", "admit at most HalfOpenProbes"}},
		{"half-open: the profile's probes", BreakerHalfOpen{}, func() *harness.History {
			h := breakerRun{}.build()
			h.Profile.Default.HalfOpenProbes = 1
			return h
		}, harness.StatusFail, []string{"3 attempts"}},
		{"half-open: attempts not visible", BreakerHalfOpen{}, breakerRun{belowServer: true}.build, harness.StatusNotApplicable, []string{"half-open probes are not visible"}},
		{"half-open: no breaker", BreakerHalfOpen{}, noBreaker, harness.StatusNotApplicable, []string{"no circuit breaker"}},

		{"recovers: at once", BreakerRecovers{}, breakerRun{}.build, harness.StatusPass, []string{"inventory succeeded again 100ms after the fault cleared at 5s"}},
		{"recovers: too slowly", BreakerRecovers{}, breakerRun{recoverAt: 9500 * time.Millisecond}.build, harness.StatusFail,
			[]string{"inventory took 4.5s after the fault cleared at 5s"}},
		{"recovers: never", BreakerRecovers{}, breakerRun{recoverAt: -1}.build, harness.StatusFail,
			[]string{"inventory never recovered after the fault cleared at 5s", "half-open"}},
		{"recovers: not yet when the run ended, before the bound", BreakerRecovers{}, func() *harness.History {
			h := breakerRun{recoverAt: -1}.build()
			var kept []harness.CallRecord
			for _, c := range h.Calls {
				if time.Duration(c.Start) < 7*time.Second { // 2s after the fault cleared; the bound is 4s
					kept = append(kept, c)
				}
			}
			h.Calls = kept
			return h
		}, harness.StatusNotApplicable, []string{"had not recovered when the run ended", "lengthen the scenario"}},
		{"recovers: run ends with the fault", BreakerRecovers{}, func() *harness.History {
			h := breakerRun{}.build()
			h.Steps = h.Steps[:1]
			return h
		}, harness.StatusNotApplicable, []string{"run ended too soon"}},
		{"recovers: no breaker", BreakerRecovers{}, noBreaker, harness.StatusNotApplicable, []string{"no circuit breaker"}},
	}
	runCheckCases(t, cases)
}

func TestBreakerOpensBelowServerReportsFailureLatencyAgainstItsBound(t *testing.T) {
	v := BreakerOpens{}.Judge(breakerRun{belowServer: true}.build())
	require.Equal(t, harness.StatusPass, v.Status, v.String())
	assert.Equal(t, "ms", v.Unit)
	assert.Equal(t, 200.0, v.Bound, "the fast-failure bound, max(50ms, RequestTimeout/10) with the default 2s timeout")
	assert.LessOrEqual(t, v.Measured, v.Bound)

	v = BreakerOpens{}.Judge(breakerRun{belowServer: true, slowFail: 2 * time.Second}.build())
	require.Equal(t, harness.StatusFail, v.Status, v.String())
	assert.Equal(t, 2000.0, v.Measured)
}
