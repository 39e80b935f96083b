package env

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

func newEmbedded(t *testing.T, opts ...Option) *Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := NewEmbedded(ctx, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, env.Close()) })
	return env
}

func service(t *testing.T, env *Embedded, name string) harness.Service {
	t.Helper()
	for _, s := range env.Services() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q in %v", name, env.Services())
	return harness.Service{}
}

// svcClient is a plain client for one service, trusting its CA; h2 lets it
// negotiate HTTP/2 by ALPN.
func svcClient(t *testing.T, svc harness.Service, h2 bool, timeout time.Duration) (*http.Client, *http.Transport) {
	t.Helper()
	tr := &http.Transport{ForceAttemptHTTP2: h2}
	if svc.CAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}, tr
}

func observe(t *testing.T, env *Embedded, service string) fakeservers.Stats {
	t.Helper()
	st, err := env.Observe(context.Background(), service)
	require.NoError(t, err)
	return st
}

func applyEnv(t *testing.T, env *Embedded, a harness.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, env.Faults().Apply(ctx, a))
}

func TestEmbeddedServesEveryServiceThroughItsProxy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []Option
		h2        bool
		scheme    string
		wantProto string // as the server saw it
	}{
		{"tls h2", nil, true, "https", fakeservers.ProtoH2},
		{"tls http1", []Option{WithHTTP2(false)}, true, "https", fakeservers.ProtoHTTP1},
		{"plain", []Option{WithTLS(false)}, false, "http", fakeservers.ProtoHTTP1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEmbedded(t, tc.opts...)
			require.Len(t, env.Services(), len(fakeservers.Services))
			for i, svc := range env.Services() {
				assert.Equal(t, fakeservers.Services[i], svc.Name)
				assert.True(t, strings.HasPrefix(svc.BaseURL, tc.scheme+"://127.0.0.1:"), svc.BaseURL)
				assert.Equal(t, tc.scheme == "https", svc.CAs != nil, "CAs must be set exactly when TLS is on")
				assert.Equal(t, svc.CAs != nil, svc.CAPEM != nil, "CAPEM is the same CA as CAs, for drivers")
				if svc.CAPEM != nil {
					pool := x509.NewCertPool()
					require.True(t, pool.AppendCertsFromPEM(svc.CAPEM))
					assert.True(t, pool.Equal(svc.CAs), "CAPEM holds the CA of CAs")
				}

				// The base URL is the proxy's listener, not the service's.
				st, err := env.Driver().Proxy(context.Background(), svc.Name)
				require.NoError(t, err)
				assert.Equal(t, tc.scheme+"://"+st.Listen, svc.BaseURL)
				assert.Equal(t, env.UpstreamAddr(svc.Name), st.Upstream)
				assert.NotEqual(t, env.UpstreamAddr(svc.Name), st.Listen)

				c, _ := svcClient(t, svc, tc.h2, 10*time.Second)
				resp, err := c.Get(svc.BaseURL + fakeservers.RouteCatalog)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.True(t, fakeservers.VerifyDigest(resp.Header.Get(fakeservers.HeaderBodyDigest), body))

				stats := observe(t, env, svc.Name)
				require.Len(t, stats.Connections, 1, "one client connection through the proxy is one server connection")
				assert.Equal(t, tc.wantProto, stats.Connections[0].Protocol)
				assert.Equal(t, tc.scheme == "https", stats.Connections[0].TLS)
			}
		})
	}
}

func TestEmbeddedHTTPFaultsReachTheWireThroughTheProxy(t *testing.T) {
	env := newEmbedded(t)
	catalog := func(svc harness.Service) string { return svc.BaseURL + fakeservers.RouteCatalog }
	for _, tc := range []struct {
		name    string
		service string
		faults  []fakeservers.Fault
		check   func(t *testing.T, svc harness.Service, c *http.Client)
	}{
		{
			name:    "status with retry-after",
			service: fakeservers.Inventory,
			faults:  []fakeservers.Fault{{Kind: fakeservers.FaultStatus, Status: 503, RetryAfter: "2"}},
			check: func(t *testing.T, svc harness.Service, c *http.Client) {
				resp, err := c.Get(catalog(svc))
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
				assert.Equal(t, "2", resp.Header.Get("Retry-After"))
				assert.NotEmpty(t, resp.Header.Get(fakeservers.HeaderFault))
			},
		},
		{
			name:    "delay",
			service: fakeservers.Inventory,
			faults:  []fakeservers.Fault{{Kind: fakeservers.FaultDelay, Delay: fakeservers.Duration(400 * time.Millisecond)}},
			check: func(t *testing.T, svc harness.Service, c *http.Client) {
				_, _, d, err := get(c, catalog(svc))
				require.NoError(t, err)
				assert.GreaterOrEqual(t, d, 400*time.Millisecond)
			},
		},
		{
			name:    "slow body",
			service: fakeservers.Notification,
			faults:  []fakeservers.Fault{{Kind: fakeservers.FaultSlowBody, BytesPerSecond: 16 << 10}},
			check: func(t *testing.T, svc harness.Service, c *http.Client) {
				// 16 KiB at 16 KiB/s: about a second.
				body, hdr, d, err := get(c, catalog(svc)+"?size=16384")
				require.NoError(t, err)
				assert.GreaterOrEqual(t, d, 500*time.Millisecond)
				assert.Len(t, body, 16384)
				assert.True(t, fakeservers.VerifyDigest(hdr.Get(fakeservers.HeaderBodyDigest), body), "a slow body must still be whole")
			},
		},
		{
			name:    "cut body",
			service: fakeservers.Inventory,
			faults:  []fakeservers.Fault{{Kind: fakeservers.FaultCutBody, CutAfterBytes: 1024}},
			check: func(t *testing.T, svc harness.Service, c *http.Client) {
				body, _, _, err := get(c, catalog(svc))
				require.Error(t, err, "a cut body must fail the read")
				assert.Less(t, len(body), 64<<10)
			},
		},
		{
			name:    "close after headers",
			service: fakeservers.Inventory,
			faults:  []fakeservers.Fault{{Kind: fakeservers.FaultCloseAfterHeaders}},
			check: func(t *testing.T, svc harness.Service, c *http.Client) {
				resp, err := c.Get(catalog(svc))
				require.NoError(t, err, "the headers arrive")
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				assert.Error(t, err, "the body never does")
			},
		},
		{
			name:    "process then fail",
			service: fakeservers.Payment,
			faults: []fakeservers.Fault{{
				Kind: fakeservers.FaultProcessThenFail, Route: fakeservers.RouteCharges, Method: http.MethodPost, Then: fakeservers.ThenReset,
			}},
			check: func(t *testing.T, svc harness.Service, c *http.Client) {
				body, err := json.Marshal(fakeservers.ChargeRequest{OrderID: "ord-ptf", Amount: 1250, Currency: "EUR"})
				require.NoError(t, err)
				resp, err := c.Post(svc.BaseURL+fakeservers.RouteCharges, "application/json", bytes.NewReader(body))
				if err == nil {
					// The server may have flushed headers before dropping the
					// connection; then the body read is what fails.
					_, err = io.ReadAll(resp.Body)
					_ = resp.Body.Close()
				}
				require.Error(t, err, "the client must see the connection die")
				assert.Equal(t, 1, observe(t, env, svc.Name).Charges["ord-ptf"], "the server committed the charge before failing")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, env.Reset(context.Background(), harness.DefaultSeed))
			svc := service(t, env, tc.service)
			c, _ := svcClient(t, svc, false, 10*time.Second)
			applyEnv(t, env, harness.SetHTTPFaults(tc.service, tc.faults...))
			tc.check(t, svc, c)

			applyEnv(t, env, harness.ClearHTTPFaults(tc.service))
			resp, err := c.Get(catalog(svc))
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "clearing the faults must restore normal answers")
		})
	}
}

func TestEmbeddedKeepAliveMaxRequestsThroughTheProxy(t *testing.T) {
	env := newEmbedded(t)
	svc := service(t, env, fakeservers.Inventory)
	applyEnv(t, env, harness.SetKeepAlive(svc.Name, fakeservers.KeepAlive{MaxRequestsPerConn: 2}))
	c, _ := svcClient(t, svc, false, 10*time.Second)
	for range 6 {
		_, _, _, err := get(c, svc.BaseURL+fakeservers.RouteCatalog+"?size=64")
		require.NoError(t, err)
	}
	st := observe(t, env, svc.Name)
	assert.Equal(t, 3, st.Accepted, "6 requests at 2 per connection need 3 connections")
	for _, cr := range st.Connections {
		assert.LessOrEqual(t, cr.Requests, 2)
	}
}

func TestEmbeddedDisableProxyDropsServerConnections(t *testing.T) {
	env := newEmbedded(t, WithTLS(false))
	svc := service(t, env, fakeservers.Payment)
	addr := strings.TrimPrefix(svc.BaseURL, "http://")

	br := heldConn(t, addr, "payment", "/v1/catalog?size=64")
	require.Equal(t, 1, observe(t, env, svc.Name).OpenConnections)
	open, err := env.OpenConnections(context.Background(), svc.Name)
	require.NoError(t, err)
	require.Equal(t, 1, open, "the cheap counter agrees with Observe")

	applyEnv(t, env, harness.DisableProxy(svc.Name))
	assert.Eventually(t, func() bool { return observe(t, env, svc.Name).OpenConnections == 0 }, 5*time.Second, 20*time.Millisecond,
		"disabling the proxy must close the server side of live connections")
	open, err = env.OpenConnections(context.Background(), svc.Name)
	require.NoError(t, err)
	assert.Equal(t, 0, open)
	_, err = env.OpenConnections(context.Background(), "billing")
	assert.ErrorIs(t, err, harness.ErrUnknownService)
	_, err = br.ReadByte()
	assert.Error(t, err, "the client's next read must fail")
	c, _ := svcClient(t, svc, false, 2*time.Second)
	_, _, _, err = get(c, svc.BaseURL+fakeservers.RouteCatalog)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)

	applyEnv(t, env, harness.EnableProxy(svc.Name))
	_, _, _, err = get(c, svc.BaseURL+fakeservers.RouteCatalog)
	require.NoError(t, err)
	assert.Equal(t, 1, observe(t, env, svc.Name).OpenConnections)
}

// The servers close a connection between requests through Toxiproxy, and
// the client, whose next read fails, sees it go.
func TestEmbeddedCloseIdleConnsClosesThroughTheProxy(t *testing.T) {
	env := newEmbedded(t, WithTLS(false))
	svc := service(t, env, fakeservers.Payment)
	br := heldConn(t, strings.TrimPrefix(svc.BaseURL, "http://"), "payment", "/v1/catalog?size=64")
	require.Equal(t, 1, observe(t, env, svc.Name).OpenConnections)

	res, err := env.CloseIdleConns(context.Background(), svc.Name)
	require.NoError(t, err)
	require.Len(t, res.Closed, 1)
	assert.Empty(t, res.Busy)
	assert.Equal(t, "GET "+fakeservers.RouteCatalog, res.Closed[0].LastRoute)
	assert.Equal(t, 0, observe(t, env, svc.Name).OpenConnections)
	_, err = br.ReadByte()
	assert.Error(t, err, "the close reaches the client through the proxy")
	_, err = env.CloseIdleConns(context.Background(), "billing")
	assert.ErrorIs(t, err, harness.ErrUnknownService)
}

func TestEmbeddedResetRestoresStartState(t *testing.T) {
	baseline := fakeservers.KeepAlive{IdleTimeout: fakeservers.Duration(30 * time.Second)}
	env := newEmbedded(t, WithKeepAlive(baseline))
	svc := service(t, env, fakeservers.Inventory)
	c, _ := svcClient(t, svc, true, 10*time.Second)
	_, _, _, err := get(c, svc.BaseURL+fakeservers.RouteCatalog)
	require.NoError(t, err)

	applyEnv(t, env, harness.AddToxic(svc.Name, harness.Latency("", harness.Downstream, time.Second, 0)))
	applyEnv(t, env, harness.DisableProxy(fakeservers.Payment))
	applyEnv(t, env, harness.SetHTTPFaults(svc.Name, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 500}))
	applyEnv(t, env, harness.SetKeepAlive(svc.Name, fakeservers.KeepAlive{MaxRequestsPerConn: 1}))

	require.NoError(t, env.Reset(context.Background(), harness.DefaultSeed))
	for _, name := range fakeservers.Services {
		st, err := env.Driver().Proxy(context.Background(), name)
		require.NoError(t, err)
		assert.True(t, st.Enabled, name)
		assert.Empty(t, st.Toxics, name)
	}
	admin := env.Driver().Admin(svc.Name)
	faults, err := admin.Faults(context.Background())
	require.NoError(t, err)
	assert.Empty(t, faults)
	ka, err := admin.KeepAlive(context.Background())
	require.NoError(t, err)
	assert.Equal(t, baseline, ka, "reset restores the keep-alive the environment started with")
	admin.Close()
	assert.Empty(t, observe(t, env, svc.Name).Requests, "reset forgets the server's history")
}

func TestOptionAndLookupErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		says string
	}{
		{"latency of unknown service", WithServiceLatency("billing", time.Millisecond, 0), "WithServiceLatency"},
		{"keep-alive of unknown service", WithServiceKeepAlive("billing", fakeservers.KeepAlive{}), "WithServiceKeepAlive"},
		{"call timeout", WithCallTimeout(0), "WithCallTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewEmbedded(context.Background(), tc.opt)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
	env := newEmbedded(t, WithTLS(false))
	_, err := env.Observe(context.Background(), "billing")
	require.ErrorIs(t, err, harness.ErrUnknownService)
	assert.Empty(t, env.AdminURL("billing"))
	assert.NotEmpty(t, env.AdminURL(fakeservers.Payment))
	assert.NotEmpty(t, env.ToxiproxyURL())
}

func TestEmbeddedCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env, err := NewEmbedded(context.Background())
	require.NoError(t, err)
	var transports []*http.Transport
	for i, svc := range env.Services() {
		c, tr := svcClient(t, svc, i%2 == 0, 10*time.Second)
		transports = append(transports, tr)
		_, _, _, err := get(c, svc.BaseURL+fakeservers.RouteCatalog)
		require.NoError(t, err)
		_, err = env.Observe(context.Background(), svc.Name)
		require.NoError(t, err)
	}
	require.NoError(t, env.Faults().Apply(context.Background(), harness.AddToxic(fakeservers.Payment, harness.Latency("", harness.Downstream, time.Millisecond, 0))))

	// The client's connections are still open when the environment closes.
	require.NoError(t, env.Close())
	require.NoError(t, env.Close(), "Close is idempotent")
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
}

func TestNewEmbeddedFailureHalfwayStopsWhatItStarted(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// Payment and inventory start; notification's config is refused.
	_, err := NewEmbedded(context.Background(), WithServiceLatency(fakeservers.Notification, -time.Second, 0))
	require.Error(t, err)
	assert.ErrorIs(t, err, fakeservers.ErrInvalidConfig)
	assert.Contains(t, err.Error(), fakeservers.Notification)
}

// goroutineBlock splits goleak's report into one block per goroutine.
var goroutineBlock = regexp.MustCompile(`Goroutine \d+ in state [^,]+, with \S+ on top of the stack:`)

func TestGoroutineIgnoresLeaveOnlyClientGoroutines(t *testing.T) {
	base := goleak.IgnoreCurrent()
	env := newEmbedded(t)

	// Live connections of a plain client to every service, HTTP/2 and
	// HTTP/1, plus a toxic (its stubs run per link), an observation and a
	// fault-driver admin call, so every kind of environment goroutine exists.
	clientConns := 0
	for i, svc := range env.Services() {
		c, _ := svcClient(t, svc, i == 0, 10*time.Second)
		for range 2 {
			_, _, _, err := get(c, svc.BaseURL+fakeservers.RouteCatalog)
			require.NoError(t, err)
		}
		clientConns++
	}
	applyEnv(t, env, harness.AddToxic(fakeservers.Inventory, harness.Latency("", harness.Upstream, time.Millisecond, 0)))
	applyEnv(t, env, harness.ClearHTTPFaults(fakeservers.Payment))
	_ = observe(t, env, fakeservers.Notification)

	opts := []goleak.Option{base}
	for _, f := range env.GoroutineIgnores() {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	err := goleak.Find(opts...)
	require.Error(t, err, "the client's own goroutines must still be reported")
	report := err.Error()
	blocks := goroutineBlock.Split(report, -1)[1:]
	clientFuncs := []string{
		"net/http.(*persistConn).readLoop",
		"net/http.(*persistConn).writeLoop",
		"net/http.(*http2clientConnReadLoop).run",
	}
	perConn := 0
	for _, b := range blocks {
		isClient := false
		for _, f := range clientFuncs {
			if strings.Contains(b, f+"(") {
				isClient = true
			}
		}
		assert.True(t, isClient, "an environment goroutine is not ignored; add its function to environmentFunctions:\n%s", b)
		if strings.Contains(b, "readLoop(") || strings.Contains(b, "clientConnReadLoop).run(") {
			perConn++
		}
	}
	assert.Equal(t, clientConns, perConn, "one read loop per client connection must remain visible:\n%s", report)
}

func TestFaultDriverErrorsOnFakeServices(t *testing.T) {
	env := newEmbedded(t, WithTLS(false))
	err := env.Faults().Apply(context.Background(), harness.SetHTTPFaults(fakeservers.Payment, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 418}))
	require.Error(t, err, "the fake service refuses a status it does not model")
	assert.Contains(t, err.Error(), "status")
	err = env.Faults().Apply(context.Background(), harness.SetKeepAlive(fakeservers.Payment, fakeservers.KeepAlive{MaxRequestsPerConn: -1}))
	require.Error(t, err)
	assert.False(t, errors.Is(err, harness.ErrUnknownService))
}
