package brokenclients

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/pooledclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func names(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

func TestAll_EntriesAreComplete(t *testing.T) {
	known := map[string]bool{}
	for _, id := range check.AllIDs() {
		known[id] = true
	}
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	all := All()
	require.Len(t, all, 34)
	assert.Equal(t, names(all), names(All()), "All must return a stable order")
	seen := map[string]bool{}
	for _, e := range all {
		assert.Regexp(t, kebab, e.Name)
		assert.False(t, seen[e.Name], "duplicate name %s", e.Name)
		seen[e.Name] = true
		assert.NotEmpty(t, e.Bug, e.Name)
		assert.NotNil(t, e.Factory, e.Name)
		require.NotEmpty(t, e.CaughtBy, e.Name)
		for _, id := range e.CaughtBy {
			assert.True(t, known[id], "%s: %q is not a harness check id", e.Name, id)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, e := range All() {
		got, err := Lookup(e.Name)
		require.NoError(t, err)
		assert.Equal(t, e.Name, got.Name)
		assert.Equal(t, e.CaughtBy, got.CaughtBy)
	}
	_, err := Lookup("no-such-client")
	require.ErrorIs(t, err, ErrUnknownClient)
	for _, n := range names(All()) {
		assert.Contains(t, err.Error(), n, "the error lists the valid names")
	}
}

// ReferenceConfig keeps Contract, so a gallery client held to Profile is
// judged against the reference's numbers.
func TestReferenceConfig_HonoursContract(t *testing.T) {
	cfg, err := ReferenceConfig(harness.Service{Name: "inventory", BaseURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	d := Contract
	assert.Equal(t, d.MaxConns, cfg.MaxConnsPerHost)
	assert.Equal(t, d.PoolWait, cfg.PoolWait)
	assert.Equal(t, d.RequestTimeout, cfg.RequestTimeout)
	assert.Equal(t, d.MaxAttempts, cfg.Retry.MaxAttempts)
	assert.Equal(t, d.BackoffBase, cfg.Retry.BaseBackoff)
	assert.Equal(t, d.BackoffCap, cfg.Retry.MaxBackoff)
	assert.Equal(t, d.BackoffJitter, cfg.Retry.Jitter)
	assert.Equal(t, d.BreakerOpenDelay, cfg.Breaker.OpenDelay)
	assert.Less(t, cfg.Breaker.OpenDelay, d.RecoveryTime)

	_, err = ReferenceConfig(harness.Service{BaseURL: "http://127.0.0.1:1"})
	require.Error(t, err, "a service without a name is refused")
	for _, e := range All() {
		_, err := e.Factory(harness.Service{BaseURL: "http://127.0.0.1:1"})
		assert.Error(t, err, "%s must refuse a service without a name", e.Name)
	}
}

// Every gallery client works in the happy path over TLS, trusting the
// service's CA and nothing else: a client given another CA is refused.
func TestGallery_TLSTrustsOnlyServiceCA(t *testing.T) {
	s, svc := startService(t, fakeservers.Inventory, true)
	other, err := fakeservers.NewCA()
	require.NoError(t, err)
	wrong := svc
	wrong.CAs = other.Pool()
	for _, e := range All() {
		t.Run(e.Name, func(t *testing.T) {
			c := newClient(t, subject{e.Name, e.Factory}, svc)
			got := get(c, itemURL(svc, "sku-1"), "trusted-"+e.Name)
			require.NotEmpty(t, attemptsOf(s, "trusted-"+e.Name), "%s got past the handshake: %v", e.Name, got.err)
			switch e.Name {
			case "cancel-before-body", "attempt-deadline-cuts-body":
				// Their bug cuts the body read short when it is not
				// buffered in time, which on a loaded machine it may not be.
			default:
				require.NoError(t, got.err)
				assert.Equal(t, http.StatusOK, got.status)
			}

			bad := newClient(t, subject{e.Name, e.Factory}, wrong)
			got = get(bad, itemURL(wrong, "sku-1"), "untrusted-"+e.Name)
			require.Error(t, got.err)
			if !errors.Is(got.err, pooledclient.ErrCircuitOpen) { // retried TLS failures may trip the breaker
				assert.Equal(t, harness.ClassTLS, harness.Classify(got.err), "%v", got.err)
			}
			assert.Empty(t, attemptsOf(s, "untrusted-"+e.Name), "no request got past the handshake")
		})
	}
}

// Apart from no-timeouts, every gallery client keeps the reference's 2s
// request timeout: a server that answers, or sends its body, more slowly
// than that is abandoned, and the error reads as a timeout. no-timeouts is
// held until the caller itself gives up.
func TestGallery_OnlyNoTimeoutsHangs(t *testing.T) {
	const (
		callerLimit = 4 * time.Second // the caller's own deadline ends the hang
		gaveUpBy    = 3500 * time.Millisecond
	)
	for _, tc := range []struct {
		name  string
		fault fakeservers.Fault
		path  string
	}{
		{"slow headers", fakeservers.Fault{Kind: fakeservers.FaultDelay, Route: fakeservers.RouteItem, Delay: fakeservers.Duration(3 * callerLimit)}, "/v1/items/sku-1"},
		// 8s for the whole body, 4s even for body-not-read-to-eof's half.
		{"slow body", fakeservers.Fault{Kind: fakeservers.FaultSlowBody, Route: fakeservers.RouteCatalog, BytesPerSecond: 1024}, "/v1/catalog?size=8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, svc := startService(t, fakeservers.Inventory, false, tc.fault)
			all := All()
			clients := make([]harness.Client, len(all))
			for i, e := range all {
				clients[i] = newClient(t, subject{e.Name, e.Factory}, svc)
			}
			ctx, cancel := context.WithTimeout(context.Background(), callerLimit)
			t.Cleanup(cancel)
			outs := concurrently(len(all), func(i int) outcome {
				return call(ctx, clients[i], http.MethodGet, svc.BaseURL+tc.path, id("hang", i), nil, nil)
			})
			for i, e := range all {
				got := outs[i]
				if e.Name == "no-timeouts" {
					assert.GreaterOrEqual(t, got.elapsed, callerLimit-50*time.Millisecond, "%s waits until the caller gives up", e.Name)
					continue
				}
				require.Error(t, got.err, "%s must give up before the server is done", e.Name)
				if e.Name == "cancel-before-body" {
					continue // it cancels every body read at once: no timeout to wait for
				}
				assert.Equal(t, harness.ClassTimeout, harness.Classify(got.err), "%s: %v", e.Name, got.err)
				assert.Less(t, got.elapsed, gaveUpBy, "%s gives up at its own 2s timeout, not the caller's", e.Name)
			}
		})
	}
}

// Apart from unbounded-pool, no-connection-limit and new-client-per-request
// (a new pool per call), every gallery client keeps the reference's
// connection bound. cancel-before-body and body-not-read-to-eof are left
// out: the connections they drop mid-body stay open on the server until the
// server notices, which the server's own peak counts (pool.bound's overlap
// judges them).
func TestGallery_OnlyUnboundedOnesExceedThePool(t *testing.T) {
	const calls = 40
	all := All()
	peaks := make([]int, len(all))
	var wg sync.WaitGroup
	for i, e := range all {
		s, svc := startService(t, fakeservers.Inventory, false,
			fakeservers.Fault{Kind: fakeservers.FaultDelay, Route: fakeservers.RouteItem, Delay: fakeservers.Duration(300 * time.Millisecond)})
		c := newClient(t, subject{e.Name, e.Factory}, svc)
		wg.Go(func() {
			concurrently(calls, func(j int) outcome { return get(c, itemURL(svc, "sku-1"), id("load", j)) })
			peaks[i] = s.Stats().PeakOpen
		})
	}
	wg.Wait()
	for i, e := range all {
		switch e.Name {
		case "unbounded-pool", "no-connection-limit", "new-client-per-request", "detached-requests":
			assert.Greater(t, peaks[i], refMaxConns, e.Name)
			continue
		case "cancel-before-body", "body-not-read-to-eof", "attempt-deadline-cuts-body":
			// They give connections up while the server still serves them
			// (a body left unread, a call abandoned at a 10ms deadline
			// against a 300ms answer), so on a loaded machine they may
			// dial past the pool before the server sees the old ones close.
			continue
		}
		assert.LessOrEqual(t, peaks[i], refMaxConns, "%s: peak %d (every peak: %v)", e.Name, peaks[i], peaks)
	}
}

// Apart from retries-unsafe-post, no gallery client sends an unkeyed POST
// twice, even when its connection dies after the server processed it.
func TestGallery_OnlyUnsafePostChargesTwice(t *testing.T) {
	for _, e := range All() {
		t.Run(e.Name, func(t *testing.T) {
			s, svc := startService(t, fakeservers.Payment, false, fakeservers.Fault{
				Kind: fakeservers.FaultProcessThenFail, Route: fakeservers.RouteCharges, Method: http.MethodPost, Then: fakeservers.ThenReset})
			c := newClient(t, subject{e.Name, e.Factory}, svc)
			got := call(context.Background(), c, http.MethodPost, svc.BaseURL+fakeservers.RouteCharges, "charge-1",
				chargeBody(t, "order-1"), http.Header{"Content-Type": {"application/json"}})
			require.Error(t, got.err)
			charges := s.Stats().Charges["order-1"]
			if e.Name == "retries-unsafe-post" {
				assert.GreaterOrEqual(t, charges, 2)
				return
			}
			assert.Equal(t, 1, charges)
		})
	}
}
