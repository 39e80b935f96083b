package brokenclients

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
)

// Each retry oracle's gallery client against the reference on a service
// that answers every read the same way: one call, judged from the server's
// record of its attempts and from what the caller got. The bounds are wide
// (a quarter of a backoff at least) so that a loaded machine decides
// nothing.
func TestRetryOracles_ShowTheirBug(t *testing.T) {
	const ms = time.Millisecond
	unavailable := fakeservers.Fault{Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusServiceUnavailable}
	for _, tc := range []struct {
		name  string
		fault fakeservers.Fault
		check func(t *testing.T, s *fakeservers.Server, got outcome, ref bool)
	}{
		{"gives-up-early", unavailable, func(t *testing.T, s *fakeservers.Server, _ outcome, ref bool) {
			want := 3
			if !ref {
				want = 2
			}
			assert.Len(t, attemptsOf(s, "call"), want, "declared 3 attempts")
		}},
		{"constant-backoff", unavailable, func(t *testing.T, s *fakeservers.Server, _ outcome, ref bool) {
			g := gaps(attemptsOf(s, "call"))
			require.Len(t, g, 2)
			if ref {
				assert.GreaterOrEqual(t, g[1], 50*ms, "the second delay is at least the first's ceiling (50ms, equal jitter)")
				return
			}
			assert.Less(t, g[1]-g[0], 25*ms, "the same delay twice: %v", g)
		}},
		{"uncapped-backoff", unavailable, func(t *testing.T, s *fakeservers.Server, _ outcome, ref bool) {
			if ref {
				return // its cap (500ms) is beyond its second delay
			}
			g := gaps(attemptsOf(s, "call"))
			require.Len(t, g, 2)
			assert.GreaterOrEqual(t, g[1], 90*ms, "doubled past its 60ms cap: %v", g)
		}},
		{"sleeps-after-last-attempt", unavailable, func(t *testing.T, s *fakeservers.Server, got outcome, ref bool) {
			rs := attemptsOf(s, "call")
			require.Len(t, rs, 3)
			// From the last answer to the return, overstated by the time
			// before the first attempt arrived (a dial on loopback).
			tail := got.elapsed - rs[2].Finished.Sub(rs[0].Arrived)
			if ref {
				assert.Less(t, tail, 100*ms, "the last answer handed back at once")
				return
			}
			assert.GreaterOrEqual(t, tail, 150*ms, "a 200ms backoff slept after the last attempt")
		}},
		{"honours-any-retry-after", fakeservers.Fault{Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusServiceUnavailable, RetryAfter: "30"},
			func(t *testing.T, s *fakeservers.Server, got outcome, ref bool) {
				assert.Len(t, attemptsOf(s, "call"), 1)
				if ref {
					require.NoError(t, got.err)
					assert.Equal(t, http.StatusServiceUnavailable, got.status)
					assert.Less(t, got.elapsed, 500*ms, "a Retry-After beyond the cap is handed back at once")
					return
				}
				assert.Error(t, got.err, "waited until its deadline")
				assert.GreaterOrEqual(t, got.elapsed, 1500*ms)
			}},
		{"never-retries-429", fakeservers.Fault{Kind: fakeservers.FaultStatus, Route: fakeservers.RouteItem, Status: http.StatusTooManyRequests, RetryAfter: "1"},
			func(t *testing.T, s *fakeservers.Server, got outcome, ref bool) {
				n := len(attemptsOf(s, "call"))
				if ref {
					assert.GreaterOrEqual(t, n, 2, "a 1s Retry-After fits in a 2s call")
					return
				}
				assert.Equal(t, 1, n)
				assert.Equal(t, http.StatusTooManyRequests, got.status)
			}},
		{"closes-without-drain", unavailable, func(t *testing.T, s *fakeservers.Server, _ outcome, ref bool) {
			conns := map[uint64]bool{}
			for _, r := range attemptsOf(s, "call") {
				conns[r.ConnID] = true
			}
			if ref {
				assert.Len(t, conns, 1, "every retry on the same connection")
				return
			}
			assert.Len(t, conns, 3, "a new connection per retry")
		}},
	} {
		for _, sub := range []subject{reference, gallery(t, tc.name)} {
			t.Run(tc.name+"/"+sub.name, func(t *testing.T) {
				s, svc := startService(t, fakeservers.Inventory, false, tc.fault)
				c := newClient(t, sub, svc)
				got := get(c, itemURL(svc, "sku-1"), "call")
				tc.check(t, s, got, sub.name == reference.name)
			})
		}
	}
}
