package fakeservers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusFaultWithRetryAfter(t *testing.T) {
	s := start(t, Config{Service: Payment})
	require.NoError(t, s.SetFaults(Fault{Name: "throttle", Kind: FaultStatus, Status: 429, RetryAfter: "2", Route: RouteCharges, Method: "POST"}))
	c := client(t, s)
	r := do(t, c, "POST", s.URL()+"/v1/charges", `{"order_id":"o","amount":1,"currency":"EUR"}`)
	assert.Equal(t, 429, r.resp.StatusCode)
	assert.Equal(t, "2", r.resp.Header.Get("Retry-After"))
	assert.Equal(t, "throttle", r.resp.Header.Get(HeaderFault))
	assert.True(t, VerifyDigest(r.resp.Header.Get(HeaderBodyDigest), r.body))
	// Scoped by route: the catalog is untouched.
	r = do(t, c, "GET", s.URL()+"/v1/catalog?size=100", "")
	assert.Equal(t, 200, r.resp.StatusCode)
	assert.Empty(t, r.resp.Header.Get(HeaderFault))

	st := s.Stats()
	assert.Empty(t, st.Charges, "a status fault answers before the side effect")
	assert.Equal(t, FaultStatus, st.Requests[0].Fault)
	assert.Equal(t, 429, st.Requests[0].Status)
	assert.Equal(t, "", st.Requests[1].Fault)

	s.ClearFaults()
	r = do(t, c, "POST", s.URL()+"/v1/charges", `{"order_id":"o","amount":1,"currency":"EUR"}`)
	assert.Equal(t, 201, r.resp.StatusCode)
}

// pattern runs n requests and returns which ones were faulted.
func pattern(t *testing.T, s *Server, n int) string {
	t.Helper()
	c := client(t, s)
	var b strings.Builder
	for range n {
		r := do(t, c, "GET", s.URL()+"/v1/items/SKU-1", "")
		if r.resp.StatusCode == 503 {
			b.WriteByte('X')
		} else {
			require.Equal(t, 200, r.resp.StatusCode)
			b.WriteByte('.')
		}
	}
	return b.String()
}

func TestFaultProbabilitiesAreSeededAndReplayable(t *testing.T) {
	faults := []Fault{
		{Kind: FaultDelay, Delay: Duration(time.Millisecond), Probability: 0.3},
		{Kind: FaultStatus, Status: 503, Probability: 0.5, Route: RouteItem},
	}
	run := func(seed int64) (string, *Server) {
		s := start(t, Config{Service: Inventory, Seed: seed})
		require.NoError(t, s.SetFaults(faults...))
		return pattern(t, s, 48), s
	}
	a, sa := run(42)
	b, _ := run(42)
	other, _ := run(43)
	t.Logf("seed 42: %s; seed 43: %s", a, other)
	assert.Equal(t, a, b, "same seed, same requests: same faults")
	assert.Contains(t, a, "X")
	assert.Contains(t, a, ".")
	assert.NotEqual(t, a, other, "another seed draws differently")

	sa.Reset()
	assert.Equal(t, a, pattern(t, sa, 48), "a reset replays the same draws")

	sa.ResetSeed(43)
	assert.Equal(t, other, pattern(t, sa, 48), "a reset with another seed draws as a server started with it")
	var draws []uint32
	for _, r := range sa.Stats().Requests {
		draws = append(draws, r.Draw)
	}
	require.Len(t, draws, 48)
	assert.Equal(t, uint32(1), draws[0], "draws are numbered from the reseed")
	for i := 1; i < len(draws); i++ {
		assert.Greater(t, draws[i], draws[i-1], "sequential requests take their draws in order")
	}
}

func TestSlowBodyTakesSizeOverRate(t *testing.T) {
	s := start(t, Config{Service: Inventory})
	require.NoError(t, s.SetFaults(Fault{Kind: FaultSlowBody, BytesPerSecond: 4000, Route: RouteCatalog}))
	c := client(t, s)
	t0 := time.Now()
	r := do(t, c, "GET", s.URL()+"/v1/catalog?size=2000", "")
	took := time.Since(t0)
	require.NoError(t, r.readErr)
	assert.Len(t, r.body, 2000)
	assert.True(t, VerifyDigest(r.resp.Header.Get(HeaderBodyDigest), r.body))
	assert.GreaterOrEqual(t, took, 400*time.Millisecond, "2000 bytes at 4000 B/s take about 500ms")
	assert.Less(t, took, 5*time.Second)
	assert.Equal(t, FaultSlowBody, s.Stats().Requests[0].Fault)
}

// protocols runs a subtest against HTTP/1.1 and against h2 over TLS.
func protocols(t *testing.T, service string, fn func(t *testing.T, s *Server, c *http.Client)) {
	for _, tt := range []struct {
		name string
		tls  bool
	}{{"http1", false}, {"h2", true}} {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{Service: service, TLS: tt.tls})
			fn(t, s, client(t, s))
		})
	}
}

func TestCutBodyFailsTheRead(t *testing.T) {
	protocols(t, Inventory, func(t *testing.T, s *Server, c *http.Client) {
		require.NoError(t, s.SetFaults(Fault{Kind: FaultCutBody, CutAfterBytes: 1000, Route: RouteCatalog}))
		r := do(t, c, "GET", s.URL()+"/v1/catalog?size=10000", "")
		assert.Equal(t, 200, r.resp.StatusCode)
		assert.Error(t, r.readErr, "the client sees the body end early")
		assert.LessOrEqual(t, len(r.body), 1000)
		assert.False(t, VerifyDigest(r.resp.Header.Get(HeaderBodyDigest), r.body), "digest exposes the cut")
		rec := s.Stats().Requests[0]
		assert.Equal(t, FaultCutBody, rec.Fault)

		// The client recovers: the next request works.
		s.ClearFaults()
		r = do(t, c, "GET", s.URL()+"/v1/catalog?size=10000", "")
		require.NoError(t, r.readErr)
		assert.True(t, VerifyDigest(r.resp.Header.Get(HeaderBodyDigest), r.body))
	})
}

func TestCloseAfterHeaders(t *testing.T) {
	protocols(t, Inventory, func(t *testing.T, s *Server, c *http.Client) {
		require.NoError(t, s.SetFaults(Fault{Kind: FaultCloseAfterHeaders}))
		r := do(t, c, "GET", s.URL()+"/v1/items/SKU-1", "")
		assert.Equal(t, 200, r.resp.StatusCode, "headers arrived")
		assert.NotEmpty(t, r.resp.Header.Get(HeaderBodyDigest))
		assert.Error(t, r.readErr, "then the body never comes")
		assert.Empty(t, r.body)
		assert.Equal(t, FaultCloseAfterHeaders, s.Stats().Requests[0].Fault)
	})
}

func TestProcessThenFail(t *testing.T) {
	charge := `{"order_id":"order-1","amount":100,"currency":"EUR"}`
	t.Run("reset", func(t *testing.T) {
		protocols(t, Payment, func(t *testing.T, s *Server, c *http.Client) {
			require.NoError(t, s.SetFaults(Fault{Kind: FaultProcessThenFail, Then: ThenReset, Route: RouteCharges}))
			req, err := http.NewRequest("POST", s.URL()+"/v1/charges", strings.NewReader(charge))
			require.NoError(t, err)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			require.Error(t, err, "the client gets no answer, not even a status line")
			st := s.Stats()
			assert.Equal(t, map[string]int{"order-1": 1}, st.Charges, "but the charge was committed")
			// A retrying Go transport may have replayed the POST; it must not, POST is not idempotent.
			require.Len(t, st.Requests, 1)
			assert.Equal(t, FaultProcessThenFail, st.Requests[0].Fault)
			assert.Equal(t, 0, st.Requests[0].Status, "no response was sent")
			assert.Equal(t, "order-1", st.Requests[0].OrderID)
		})
	})
	t.Run("status", func(t *testing.T) {
		s := start(t, Config{Service: Payment})
		require.NoError(t, s.SetFaults(Fault{Kind: FaultProcessThenFail, Then: ThenStatus, Status: 503, RetryAfter: "1"}))
		c := client(t, s)
		r := do(t, c, "POST", s.URL()+"/v1/charges", charge, HeaderIdempotencyKey, "k1")
		assert.Equal(t, 503, r.resp.StatusCode)
		assert.Equal(t, "1", r.resp.Header.Get("Retry-After"))
		s.ClearFaults()
		// The retry with the same key finds the committed charge instead of charging twice.
		r = do(t, c, "POST", s.URL()+"/v1/charges", charge, HeaderIdempotencyKey, "k1")
		assert.Equal(t, 201, r.resp.StatusCode)
		assert.Equal(t, "true", r.resp.Header.Get("Idempotent-Replayed"))
		assert.Equal(t, map[string]int{"order-1": 1}, s.Stats().Charges)
	})
}

func TestSetFaultsRejectsBadFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		want  string
	}{
		{"status not allowed", Fault{Kind: FaultStatus, Status: 418}, "faults[1].status: 418 is not one of 429, 500, 502, 503, 504"},
		{"status missing", Fault{Kind: FaultStatus}, "faults[1].status: missing"},
		{"probability above one", Fault{Kind: FaultStatus, Status: 500, Probability: 1.5}, "faults[1].probability: must be in [0,1]"},
		{"negative probability", Fault{Kind: FaultStatus, Status: 500, Probability: -0.1}, "faults[1].probability: must be in [0,1]"},
		{"unknown kind", Fault{Kind: "explode"}, `faults[1].kind: "explode" is not one of`},
		{"unknown route", Fault{Kind: FaultStatus, Status: 500, Route: "/v1/charge"}, `faults[1].route: "/v1/charge" is not a route`},
		{"method not served", Fault{Kind: FaultStatus, Status: 500, Route: RouteCharges, Method: "GET"}, "faults[1].method: GET is not served on /v1/charges"},
		{"lower-case method", Fault{Kind: FaultStatus, Status: 500, Method: "get"}, `faults[1].method: "get"`},
		{"bad retry-after", Fault{Kind: FaultStatus, Status: 429, RetryAfter: "soon"}, `faults[1].retry_after: "soon"`},
		{"delay missing", Fault{Kind: FaultDelay}, "faults[1].delay: missing"},
		{"negative delay", Fault{Kind: FaultDelay, Delay: -1}, "faults[1].delay: must not be negative"},
		{"rate missing", Fault{Kind: FaultSlowBody}, "faults[1].bytes_per_second: missing"},
		{"then unknown", Fault{Kind: FaultProcessThenFail, Then: "explode"}, `faults[1].then: "explode"`},
		{"field of another kind", Fault{Kind: FaultCutBody, BytesPerSecond: 5}, "faults[1].bytes_per_second: only for kind slow_body"},
	}
	good := Fault{Kind: FaultDelay, Delay: Duration(time.Millisecond)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{Service: Payment})
			before := []Fault{{Kind: FaultStatus, Status: 502}}
			require.NoError(t, s.SetFaults(before...))
			err := s.SetFaults(good, tt.fault)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidFault)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, before, s.Faults(), "nothing changes on a bad request")
		})
	}
}

func TestAdminAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	s := start(t, Config{Service: Payment, TLS: true})
	adm := NewAdminClient(s.AdminURL())
	t.Cleanup(adm.Close)
	require.NoError(t, adm.Health(ctx))
	require.NotEqual(t, s.Addr(), adm.URL()[len("http://"):], "admin has its own listener")

	pem, err := adm.CAPEM(ctx)
	require.NoError(t, err)
	assert.Equal(t, s.CA().PEM(), pem)

	faults := []Fault{{Name: "boom", Kind: FaultStatus, Status: 500, Probability: 0.25, Route: RouteCharges}, {Kind: FaultDelay, Delay: Duration(5 * time.Millisecond)}}
	require.NoError(t, adm.SetFaults(ctx, faults...))
	got, err := adm.Faults(ctx)
	require.NoError(t, err)
	assert.Equal(t, faults, got)
	assert.Equal(t, faults, s.Faults())
	require.NoError(t, adm.ClearFaults(ctx))
	got, err = adm.Faults(ctx)
	require.NoError(t, err)
	assert.Empty(t, got)

	ka := KeepAlive{IdleTimeout: Duration(3 * time.Second), ReadHeaderTimeout: Duration(time.Second), MaxRequestsPerConn: 10}
	require.NoError(t, adm.SetKeepAlive(ctx, ka))
	gotKA, err := adm.KeepAlive(ctx)
	require.NoError(t, err)
	assert.Equal(t, ka, gotKA)
	assert.Equal(t, ka, s.KeepAlive())

	c := client(t, s)
	do(t, c, "POST", s.URL()+"/v1/charges", `{"order_id":"o-9","amount":1,"currency":"EUR"}`, HeaderRequestID, "r1")
	st, err := adm.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, Payment, st.Service)
	assert.Equal(t, map[string]int{"o-9": 1}, st.Charges)
	require.Len(t, st.Requests, 1)
	assert.Equal(t, "r1", st.Requests[0].RequestID)
	assert.Equal(t, 1, st.Accepted, "admin calls are not counted as service connections")
	counts, err := adm.Conns(ctx)
	require.NoError(t, err)
	assert.Equal(t, ConnCounts{Open: st.OpenConnections, Busy: st.BusyConnections, PeakOpen: st.PeakOpen, PeakBusy: st.PeakBusy, Accepted: st.Accepted}, counts,
		"the cheap counters agree with the full stats")
	assert.Equal(t, 1, counts.Open, "the client's keep-alive connection is still open")
	require.NoError(t, adm.Reset(ctx))
	st, err = adm.Stats(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.Requests)
	assert.Empty(t, st.Charges)
	assert.Equal(t, ka, s.KeepAlive(), "reset keeps the keep-alive policy")

	t.Run("ca.pem is 404 without TLS", func(t *testing.T) {
		plain := start(t, Config{Service: Inventory})
		pa := NewAdminClient(plain.AdminURL())
		t.Cleanup(pa.Close)
		_, err := pa.CAPEM(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "404")
	})
}

func TestAdminRejectsBadInput(t *testing.T) {
	s := start(t, Config{Service: Payment})
	before := []Fault{{Kind: FaultStatus, Status: 503}}
	require.NoError(t, s.SetFaults(before...))
	beforeKA := KeepAlive{MaxRequestsPerConn: 7}
	require.NoError(t, s.SetKeepAlive(beforeKA))
	tests := []struct {
		name, path, body, want string
	}{
		{"status 418", AdminFaultsPath, `[{"kind":"status","status":503},{"kind":"status","status":418}]`, "faults[1].status: 418 is not one of 429, 500, 502, 503, 504"},
		{"probability", AdminFaultsPath, `[{"kind":"status","status":503},{"kind":"status","status":500,"probability":2}]`, "faults[1].probability: must be in [0,1]"},
		{"single object", AdminFaultsPath, `{"kind":"teleport"}`, `faults[0].kind: "teleport" is not one of`},
		{"unknown field", AdminFaultsPath, `[{"kind":"status","status":500,"statuss":1}]`, `faults[0].statuss: unknown field`},
		{"wrong type", AdminFaultsPath, `[{"kind":"status","status":"500"}]`, `faults[0].status: want a int`},
		{"bad duration", AdminFaultsPath, `{"kind":"delay","delay":"soon"}`, `faults[0]`},
		{"not json", AdminFaultsPath, `status=500`, "faults: want a fault object or an array"},
		{"empty", AdminFaultsPath, ``, "faults: empty body"},
		{"keepalive negative", AdminKeepAlivePath, `{"idle_timeout":"-1s"}`, "idle_timeout: must not be negative"},
		{"keepalive unknown field", AdminKeepAlivePath, `{"idle":"1s"}`, "keepalive.idle: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(s.AdminURL()+tt.path, "application/json", strings.NewReader(tt.body))
			require.NoError(t, err)
			defer resp.Body.Close()
			msg, _ := io.ReadAll(resp.Body)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Contains(t, string(msg), tt.want)
			assert.Equal(t, before, s.Faults(), "faults unchanged")
			assert.Equal(t, beforeKA, s.KeepAlive(), "keep-alive unchanged")
		})
	}
	t.Run("one object is accepted", func(t *testing.T) {
		resp, err := http.Post(s.AdminURL()+AdminFaultsPath, "application/json", strings.NewReader(`{"kind":"status","status":500,"retry_after":"3"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		var got []Fault
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, []Fault{{Kind: FaultStatus, Status: 500, RetryAfter: "3"}}, got)
	})
	t.Run("delete clears", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, s.AdminURL()+AdminFaultsPath, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		assert.Empty(t, s.Faults())
	})
	http.DefaultClient.CloseIdleConnections()
	_ = errors.New
}

func TestSetHTTP2SwitchesWhatNewConnectionsNegotiate(t *testing.T) {
	s := start(t, Config{Service: Inventory, TLS: true})
	get := func() string {
		c := client(t, s) // a fresh transport: a new connection each time
		r := do(t, c, "GET", s.URL()+RouteCatalog, "")
		require.NoError(t, r.readErr)
		return r.resp.Proto
	}
	assert.True(t, s.HTTP2(), "a TLS server offers h2 unless told otherwise")
	assert.Equal(t, "HTTP/2.0", get())

	admin := NewAdminClient(s.AdminURL())
	t.Cleanup(admin.Close)
	require.NoError(t, admin.SetHTTP2(context.Background(), false))
	assert.False(t, s.HTTP2())
	assert.Equal(t, "HTTP/1.1", get(), "a client that would take h2 gets HTTP/1.1")

	require.NoError(t, admin.SetHTTP2(context.Background(), true))
	assert.Equal(t, "HTTP/2.0", get())

	plain := start(t, Config{Service: Inventory})
	require.ErrorIs(t, plain.SetHTTP2(true), ErrHTTP2Unavailable)
	require.NoError(t, plain.SetHTTP2(false))
}
