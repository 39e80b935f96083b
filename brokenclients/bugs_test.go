package brokenclients

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each test below puts the reference and one gallery client in the same
// situation, the one its bug is about, and asserts on the server's truth
// that the gallery client shows the bug and the reference does not.

func TestNewClientPerRequest_DialsEveryCallAndKeepsTheConnections(t *testing.T) {
	const calls = 50
	for _, tc := range []struct {
		subject
		check func(t *testing.T, st fakeservers.Stats)
	}{
		{reference, func(t *testing.T, st fakeservers.Stats) {
			assert.LessOrEqual(t, st.Accepted, 2, "one connection reused for every call")
		}},
		{gallery(t, "new-client-per-request"), func(t *testing.T, st fakeservers.Stats) {
			assert.GreaterOrEqual(t, st.Accepted, calls-5, "a connection per call")
			assert.GreaterOrEqual(t, st.OpenConnections, calls-5, "their idle connections pile up, never closed")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, true)
			c := newClient(t, tc.subject, svc)
			for i := range calls {
				got := get(c, itemURL(svc, "sku-1"), id("seq", i))
				require.NoError(t, got.err)
				require.Equal(t, http.StatusOK, got.status)
			}
			closeIdle(c)
			time.Sleep(100 * time.Millisecond) // let closes reach the server
			tc.check(t, s.Stats())
		})
	}
}

func TestBodyNotReadToEOF_TruncatesAndChurns(t *testing.T) {
	const calls, size = 10, 64 << 10
	for _, tc := range []struct {
		subject
		whole   bool
		maxConn int // accepted connections at most
		minConn int // and at least
	}{
		{subject: reference, whole: true, maxConn: 2, minConn: 1},
		{subject: gallery(t, "body-not-read-to-eof"), whole: false, maxConn: calls, minConn: calls - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false)
			c := newClient(t, tc.subject, svc)
			for i := range calls {
				got := get(c, svc.BaseURL+"/v1/catalog?size=65536", id("cat", i))
				require.NoError(t, got.err)
				require.Equal(t, http.StatusOK, got.status)
				assert.Equal(t, tc.whole, fakeservers.VerifyDigest(got.header.Get(fakeservers.HeaderBodyDigest), got.body),
					"call %d: %d of %d bytes", i, len(got.body), size)
				if !tc.whole {
					assert.Len(t, got.body, size/2)
				}
			}
			st := s.Stats()
			assert.LessOrEqual(t, st.Accepted, tc.maxConn)
			assert.GreaterOrEqual(t, st.Accepted, tc.minConn)
		})
	}
}

func TestRetryBodiesNotClosed_LeaksConnectionsPastIdleClose(t *testing.T) {
	// 2 discarded answers per call. The broken client's breaker counts only
	// the answers whose bodies end, so 4 calls leave it closed; the
	// reference's counts every attempt and may trip, which is fine.
	const calls = 4
	for _, tc := range []struct {
		subject
		leaked int
	}{
		{reference, 0},
		{gallery(t, "retry-bodies-not-closed"), calls * (refMaxAttempts - 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false,
				fakeservers.Fault{Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusServiceUnavailable})
			c := newClient(t, tc.subject, svc)
			for i := range calls {
				got := get(c, itemURL(svc, "sku-1"), id("burst", i))
				if tc.leaked == 0 && errors.Is(got.err, pooledclient.ErrCircuitOpen) {
					continue
				}
				require.NoError(t, got.err)
				require.Equal(t, http.StatusServiceUnavailable, got.status)
				if tc.leaked > 0 {
					require.Len(t, attemptsOf(s, id("burst", i)), refMaxAttempts, "every call was retried")
				}
			}
			closeIdle(c)
			require.Eventually(t, func() bool { return s.Stats().OpenConnections <= tc.leaked }, 5*time.Second, 10*time.Millisecond,
				"the idle connections close")
			time.Sleep(300 * time.Millisecond)
			assert.Equal(t, tc.leaked, s.Stats().OpenConnections, "connections still open after idle close")
			if tc.leaked > 0 {
				assert.GreaterOrEqual(t, goroutinesIn("net/http.(*persistConn).readLoop"), tc.leaked,
					"each leaked connection keeps its transport goroutines")
			}
		})
	}
}

func TestNoTimeouts_WaitsForASlowServer(t *testing.T) {
	const delay = 3 * time.Second
	_, svc := startService(t, fakeservers.Inventory, false,
		fakeservers.Fault{Kind: fakeservers.FaultDelay, Route: fakeservers.RouteItem, Delay: fakeservers.Duration(delay)})
	subjects := []subject{reference, gallery(t, "no-timeouts")}
	clients := []harness.Client{newClient(t, subjects[0], svc), newClient(t, subjects[1], svc)}
	// Both at once, so the test costs one delay, not two.
	outs := concurrently(2, func(i int) outcome { return get(clients[i], itemURL(svc, "sku-1"), id("slow", i)) })

	ref, broken := outs[0], outs[1]
	require.Error(t, ref.err, "the reference gives up at its request timeout")
	assert.Equal(t, harness.ClassTimeout, harness.Classify(ref.err), "%v", ref.err)
	assert.Less(t, ref.elapsed, delay)
	require.NoError(t, broken.err)
	assert.Equal(t, http.StatusOK, broken.status)
	assert.GreaterOrEqual(t, broken.elapsed, delay, "no-timeouts waits as long as the server does")
}

func TestUnboundedPool_OpensAConnectionPerCallInFlight(t *testing.T) {
	const calls = 40
	for _, tc := range []struct {
		subject
		check func(t *testing.T, peak int)
	}{
		{reference, func(t *testing.T, peak int) { assert.LessOrEqual(t, peak, refMaxConns) }},
		{gallery(t, "unbounded-pool"), func(t *testing.T, peak int) { assert.Greater(t, peak, refMaxConns) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false,
				fakeservers.Fault{Kind: fakeservers.FaultDelay, Route: fakeservers.RouteItem, Delay: fakeservers.Duration(200 * time.Millisecond)})
			c := newClient(t, tc.subject, svc)
			concurrently(calls, func(i int) outcome { return get(c, itemURL(svc, "sku-1"), id("load", i)) })
			tc.check(t, s.Stats().PeakOpen)
		})
	}
}

func TestUnboundedQueue_QueuesInsteadOfFailingFast(t *testing.T) {
	const calls, delay = 64, 200 * time.Millisecond // 4 waves of 16 connections
	for _, tc := range []struct {
		subject
		check func(t *testing.T, outs []outcome)
	}{
		{reference, func(t *testing.T, outs []outcome) {
			exhausted := 0
			for _, o := range outs {
				if errors.Is(o.err, pooledclient.ErrPoolExhausted) {
					exhausted++
					assert.Less(t, o.elapsed, 5*refPoolWait, "an exhausted call fails near the pool wait")
				}
			}
			assert.Positive(t, exhausted, "calls beyond the pool fail fast")
		}},
		{gallery(t, "unbounded-queue"), func(t *testing.T, outs []outcome) {
			slowest := time.Duration(0)
			for _, o := range outs {
				require.NoError(t, o.err, "nothing fails: everything queues")
				slowest = max(slowest, o.elapsed)
			}
			assert.Greater(t, slowest, 2*refPoolWait, "the last wave waited far beyond the pool wait")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false,
				fakeservers.Fault{Kind: fakeservers.FaultDelay, Route: fakeservers.RouteItem, Delay: fakeservers.Duration(delay)})
			c := newClient(t, tc.subject, svc)
			outs := concurrently(calls, func(i int) outcome { return get(c, itemURL(svc, "sku-1"), id("queue", i)) })
			tc.check(t, outs)
			assert.LessOrEqual(t, s.Stats().PeakOpen, refMaxConns, "the pool itself stays bounded")
		})
	}
}

func TestRetriesWithoutBackoff_StormsTheServer(t *testing.T) {
	minGap := refBaseBackoff / 2 // the reference's first delay, with equal jitter, is at least this
	for _, tc := range []struct {
		subject
		check func(t *testing.T, attempts int, gaps []time.Duration)
	}{
		{reference, func(t *testing.T, attempts int, gaps []time.Duration) {
			assert.Equal(t, refMaxAttempts, attempts)
			for _, g := range gaps {
				assert.GreaterOrEqual(t, g, minGap)
			}
		}},
		{gallery(t, "retries-without-backoff"), func(t *testing.T, attempts int, gaps []time.Duration) {
			assert.Greater(t, attempts, refMaxAttempts)
			slices.Sort(gaps)
			assert.Less(t, gaps[len(gaps)/2], minGap, "retries follow each other at once: gaps %v", gaps)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false,
				fakeservers.Fault{Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusServiceUnavailable})
			c := newClient(t, tc.subject, svc)
			got := get(c, itemURL(svc, "sku-1"), "storm")
			// The breaker may end the storm: a 503 or a breaker error are both fine.
			if got.err != nil {
				require.ErrorIs(t, got.err, pooledclient.ErrCircuitOpen)
			}
			rs := attemptsOf(s, "storm")
			tc.check(t, len(rs), gaps(rs))
		})
	}
}

func TestRetriesUnsafePost_ChargesTwice(t *testing.T) {
	for _, tc := range []struct {
		subject
		keyed   bool
		charges func(t *testing.T, n int)
	}{
		{subject: reference, charges: func(t *testing.T, n int) { assert.Equal(t, 1, n) }},
		{subject: gallery(t, "retries-unsafe-post"), charges: func(t *testing.T, n int) { assert.GreaterOrEqual(t, n, 2) }},
		// With a key the same client is safe: the server deduplicates.
		{subject: gallery(t, "retries-unsafe-post"), keyed: true, charges: func(t *testing.T, n int) { assert.Equal(t, 1, n) }},
	} {
		name := tc.name
		if tc.keyed {
			name += "/with-key"
		}
		t.Run(name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Payment, false, fakeservers.Fault{
				Kind: fakeservers.FaultProcessThenFail, Route: fakeservers.RouteCharges, Method: http.MethodPost, Then: fakeservers.ThenReset})
			c := newClient(t, tc.subject, svc)
			h := http.Header{"Content-Type": {"application/json"}}
			if tc.keyed {
				h.Set(fakeservers.HeaderIdempotencyKey, "key-order-1")
			}
			got := call(context.Background(), c, http.MethodPost, svc.BaseURL+fakeservers.RouteCharges, "charge-1", chargeBody(t, "order-1"), h)
			require.Error(t, got.err, "every attempt had its connection reset")
			tc.charges(t, s.Stats().Charges["order-1"])
		})
	}
}

func TestRetryAfterIgnored_RetriesEarly(t *testing.T) {
	for _, tc := range []struct {
		subject
		check func(t *testing.T, gap time.Duration)
	}{
		{reference, func(t *testing.T, gap time.Duration) { assert.GreaterOrEqual(t, gap, 900*time.Millisecond) }},
		{gallery(t, "retry-after-ignored"), func(t *testing.T, gap time.Duration) { assert.Less(t, gap, 500*time.Millisecond) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false, fakeservers.Fault{
				Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusTooManyRequests, RetryAfter: "1"})
			c := newClient(t, tc.subject, svc)
			got := get(c, itemURL(svc, "sku-1"), "throttled")
			require.NoError(t, got.err)
			assert.Equal(t, http.StatusTooManyRequests, got.status)
			rs := attemptsOf(s, "throttled")
			require.GreaterOrEqual(t, len(rs), 2, "a 429 is retried")
			tc.check(t, rs[1].Arrived.Sub(rs[0].Arrived))
		})
	}
}

// trip sends failing calls until the client's breaker refuses one.
func trip(t *testing.T, c harness.Client, svc harness.Service) {
	t.Helper()
	for i := range 20 {
		got := get(c, itemURL(svc, "sku-1"), id("trip", i))
		if errors.Is(got.err, pooledclient.ErrCircuitOpen) {
			return
		}
	}
	t.Fatal("the breaker never opened after 20 failing calls")
}

func TestBreakerNeverHalfOpens_StaysOpenAfterRecovery(t *testing.T) {
	for _, tc := range []struct {
		subject
		recovers bool
	}{
		{reference, true},
		{gallery(t, "breaker-never-half-opens"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false,
				fakeservers.Fault{Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusServiceUnavailable})
			c := newClient(t, tc.subject, svc)
			trip(t, c, svc)
			s.ClearFaults()
			time.Sleep(refOpenDelay + 200*time.Millisecond)
			s.Reset()
			var outs []outcome
			for i := range 5 {
				outs = append(outs, get(c, itemURL(svc, "sku-1"), id("after", i)))
				time.Sleep(50 * time.Millisecond)
			}
			if tc.recovers {
				require.NoError(t, outs[0].err, "the first call after the open delay is the probe")
				for _, o := range outs {
					require.NoError(t, o.err)
					assert.Equal(t, http.StatusOK, o.status)
				}
				return
			}
			for _, o := range outs {
				assert.ErrorIs(t, o.err, pooledclient.ErrCircuitOpen)
				assert.Equal(t, harness.ClassCircuitOpen, harness.Classify(o.err))
			}
			assert.Empty(t, s.Stats().Requests, "the healthy service never hears from the client again")
		})
	}
}

func TestHalfOpenAdmitsAll_FloodsTheRecoveringService(t *testing.T) {
	const calls = 20
	const slow = 400 * time.Millisecond // a probe's answer takes this long, so the breaker stays half-open
	for _, tc := range []struct {
		subject
		check func(t *testing.T, admitted int)
	}{
		{reference, func(t *testing.T, admitted int) { assert.LessOrEqual(t, admitted, refHalfOpenProbes) }},
		{gallery(t, "half-open-admits-all"), func(t *testing.T, admitted int) { assert.Greater(t, admitted, calls/2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Inventory, false,
				fakeservers.Fault{Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusServiceUnavailable})
			c := newClient(t, tc.subject, svc)
			trip(t, c, svc)
			require.NoError(t, s.SetFaults(fakeservers.Fault{Kind: fakeservers.FaultDelay, Route: fakeservers.RouteItem, Delay: fakeservers.Duration(slow)}))
			time.Sleep(refOpenDelay + 200*time.Millisecond)
			s.Reset()
			concurrently(calls, func(i int) outcome { return get(c, itemURL(svc, "sku-1"), id("probe", i)) })
			rs := s.Stats().Requests
			require.NotEmpty(t, rs, "at least the probe reached the service")
			// Count what arrived while the first probe was still unanswered:
			// the breaker was half-open all that time.
			first := rs[0].Arrived
			admitted := 0
			for _, r := range rs {
				if r.Arrived.Sub(first) < slow*3/4 {
					admitted++
				}
			}
			tc.check(t, admitted)
		})
	}
}

func TestGoroutinePerCall_LeaksOneGoroutinePerCall(t *testing.T) {
	const calls = 30
	const leakFn = "brokenclients.(*goroutinePerCall).report"
	for _, tc := range []struct {
		subject
		perCall int
	}{
		{reference, 0},
		{gallery(t, "goroutine-per-call"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Earlier tests' leaked goroutines were released at their cleanup.
			require.Eventually(t, func() bool { return goroutinesIn(leakFn) == 0 }, 5*time.Second, 10*time.Millisecond)
			_, svc := startService(t, fakeservers.Inventory, false)
			c := newClient(t, tc.subject, svc)
			// Settle the connection's goroutines first, so the count after
			// the calls measures only what the calls left behind.
			require.NoError(t, get(c, itemURL(svc, "sku-1"), "warm").err)
			closeIdle(c)
			want := tc.perCall
			require.Eventually(t, func() bool { return goroutinesIn(leakFn) == want }, 5*time.Second, 10*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			before := runtime.NumGoroutine()
			for i := range calls {
				require.NoError(t, get(c, itemURL(svc, "sku-1"), id("call", i)).err)
			}
			closeIdle(c)
			want += calls * tc.perCall
			require.Eventually(t, func() bool { return goroutinesIn(leakFn) == want }, 5*time.Second, 10*time.Millisecond,
				"want %d leaked goroutines, have %d", want, goroutinesIn(leakFn))
			if tc.perCall == 0 {
				require.Eventually(t, func() bool { return runtime.NumGoroutine()-before <= 2 }, 5*time.Second, 10*time.Millisecond,
					"the reference leaves nothing behind")
				return
			}
			assert.GreaterOrEqual(t, runtime.NumGoroutine()-before, calls-2, "NumGoroutine grows with the calls")
			require.NoError(t, c.(interface{ Close() error }).Close())
			time.Sleep(50 * time.Millisecond)
			assert.Equal(t, want, goroutinesIn(leakFn), "Close does not end them")
		})
	}
}

// charge posts one unkeyed charge (never retried, by the reference or the
// gallery), so each call is one attempt the server sees.
func charge(t *testing.T, c harness.Client, svc harness.Service, requestID string) outcome {
	t.Helper()
	return call(context.Background(), c, http.MethodPost, svc.BaseURL+fakeservers.RouteCharges, requestID,
		chargeBody(t, "order-"+requestID), http.Header{"Content-Type": {"application/json"}})
}

func TestNoCircuitBreaker_KeepsCallingAFailingService(t *testing.T) {
	const calls = 12
	for _, tc := range []struct {
		subject
		check func(t *testing.T, outs []outcome, reached int)
	}{
		{reference, func(t *testing.T, outs []outcome, reached int) {
			assert.ErrorIs(t, outs[calls-1].err, pooledclient.ErrCircuitOpen, "the breaker opened and fails calls fast")
			assert.Equal(t, refTripAfter, reached, "only the calls that tripped it reached the server")
		}},
		{gallery(t, "no-circuit-breaker"), func(t *testing.T, outs []outcome, reached int) {
			for i, o := range outs {
				require.NoError(t, o.err, "call %d", i)
				assert.Equal(t, http.StatusServiceUnavailable, o.status, "call %d went to the server", i)
			}
			assert.Equal(t, calls, reached, "every call reached the failing server")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Payment, false, fakeservers.Fault{
				Kind: fakeservers.FaultStatus, Route: fakeservers.RouteCharges, Method: http.MethodPost, Status: http.StatusServiceUnavailable})
			c := newClient(t, tc.subject, svc)
			outs := make([]outcome, calls)
			for i := range calls {
				outs[i] = charge(t, c, svc, id("outage", i))
			}
			tc.check(t, outs, len(s.Stats().Requests))
		})
	}
}

func TestSharedPoolAcrossServices_AHungServiceStarvesTheOthers(t *testing.T) {
	const (
		hung  = time.Second     // payment holds every call this long
		stuck = refMaxConns + 4 // payment calls at once: more than the pool
		reads = 5               // inventory calls while payment is stuck
	)
	for _, tc := range []struct {
		subject
		check func(t *testing.T, outs []outcome, reached int)
	}{
		{reference, func(t *testing.T, outs []outcome, reached int) {
			for i, o := range outs {
				require.NoError(t, o.err, "inventory call %d has a pool of its own", i)
				assert.Equal(t, http.StatusOK, o.status)
			}
			assert.Equal(t, reads, reached)
		}},
		{gallery(t, "shared-pool-across-services"), func(t *testing.T, outs []outcome, reached int) {
			for i, o := range outs {
				assert.ErrorIs(t, o.err, pooledclient.ErrPoolExhausted, "inventory call %d found payment's calls in every slot", i)
			}
			assert.Zero(t, reached, "no inventory call got as far as the server")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pay, paySvc := startService(t, fakeservers.Payment, false, fakeservers.Fault{
				Kind: fakeservers.FaultDelay, Route: fakeservers.RouteCharges, Method: http.MethodPost, Delay: fakeservers.Duration(hung)})
			inv, invSvc := startService(t, fakeservers.Inventory, false)
			// One subject builds both services' clients, as the harness does.
			payClient := newClient(t, tc.subject, paySvc)
			invClient := newClient(t, tc.subject, invSvc)

			bodies := make([][]byte, stuck) // built here: require must not run off the test goroutine
			for i := range bodies {
				bodies[i] = chargeBody(t, id("order-stuck", i))
			}
			held := make(chan struct{})
			go func() {
				defer close(held)
				concurrently(stuck, func(i int) outcome {
					return call(context.Background(), payClient, http.MethodPost, paySvc.BaseURL+fakeservers.RouteCharges, id("stuck", i),
						bodies[i], http.Header{"Content-Type": {"application/json"}})
				})
			}()
			t.Cleanup(func() { <-held })
			require.Eventually(t, func() bool { return pay.Stats().OpenConnections >= refMaxConns }, hung/2, 5*time.Millisecond,
				"payment's calls fill the pool")
			outs := concurrently(reads, func(i int) outcome { return get(invClient, itemURL(invSvc, "sku-1"), id("read", i)) })
			tc.check(t, outs, len(inv.Stats().Requests))
		})
	}
}

func TestBackoffNeverResets_StaysSlowAfterRecovery(t *testing.T) {
	const failures, after = 4, 3 // 4 failures: the delay reaches its cap, the breaker (5) stays closed
	for _, tc := range []struct {
		subject
		check func(t *testing.T, elapsed []time.Duration)
	}{
		{reference, func(t *testing.T, elapsed []time.Duration) {
			assert.Less(t, slices.Min(elapsed), penaltyMax, "calls are as fast as before the failures: %v", elapsed)
		}},
		{gallery(t, "backoff-never-resets"), func(t *testing.T, elapsed []time.Duration) {
			for i, e := range elapsed {
				assert.GreaterOrEqual(t, e, penaltyMax, "successful call %d still waits the delay the failures left", i)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Payment, false, fakeservers.Fault{
				Kind: fakeservers.FaultStatus, Route: fakeservers.RouteCharges, Method: http.MethodPost, Status: http.StatusServiceUnavailable})
			c := newClient(t, tc.subject, svc)
			for i := range failures {
				got := charge(t, c, svc, id("fail", i))
				require.NoError(t, got.err)
				require.Equal(t, http.StatusServiceUnavailable, got.status)
			}
			s.ClearFaults()
			var elapsed []time.Duration
			for i := range after {
				got := charge(t, c, svc, id("ok", i))
				require.NoError(t, got.err)
				require.Equal(t, http.StatusCreated, got.status)
				elapsed = append(elapsed, got.elapsed)
			}
			assert.Len(t, s.Stats().Requests, failures+after, "every call reached the server, once")
			tc.check(t, elapsed)
		})
	}
}
