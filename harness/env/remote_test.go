package env

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

// remoteWorld is what a team's staging cluster would be: a Toxiproxy
// server and the fake services, each started by the test as a separate
// server, known to the remote environment only by URLs.
type remoteWorld struct {
	toxi      *ToxiproxyServer
	caFile    string
	upstreams map[string]string
	admins    map[string]string
}

func startRemoteWorld(t *testing.T) remoteWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, err := fakeservers.NewCA()
	require.NoError(t, err)
	w := remoteWorld{upstreams: map[string]string{}, admins: map[string]string{}}
	for i, name := range fakeservers.Services {
		srv, err := fakeservers.Start(ctx, fakeservers.Config{Service: name, TLS: true, CA: ca, Seed: int64(10 + i)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = srv.Close() })
		w.upstreams[name] = srv.Addr()
		w.admins[name] = srv.AdminURL()
	}
	w.toxi, err = StartToxiproxy(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.toxi.Close() })
	w.caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(w.caFile, ca.PEM(), 0o644))
	return w
}

func (w remoteWorld) config(withAdmins bool) RemoteConfig {
	cfg := RemoteConfig{ToxiproxyURL: w.toxi.URL(), Upstreams: w.upstreams, CAFile: w.caFile, ListenHost: "127.0.0.1"}
	if withAdmins {
		cfg.AdminURLs = w.admins
	}
	return cfg
}

func newRemote(t *testing.T, cfg RemoteConfig) *Remote {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := NewRemote(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Close() })
	return env
}

func TestRemoteJudgesEveryCheckOnlyWithAdminURLs(t *testing.T) {
	serverTruth := map[string]bool{check.IDLeakServerConns: true, check.IDPoolBound: true, check.IDLedgerNoDuplicate: true}
	checks := append(check.Leaks(), check.NoHang{}, check.PoolBound{}, check.Ledger{})
	tests := []struct {
		name       string
		withAdmins bool
	}{
		{"fake services with admin URLs", true},
		{"real services without admin URLs", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startRemoteWorld(t)
			env := newRemote(t, w.config(tt.withAdmins))
			require.Len(t, env.Services(), len(fakeservers.Services))
			for _, svc := range env.Services() {
				require.True(t, strings.HasPrefix(svc.BaseURL, "https://127.0.0.1:"), svc.BaseURL)
			}
			require.NoError(t, env.Reset(harnesstest.Ctx(t), harness.DefaultSeed))

			h, err := harness.Run(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, harnesstest.ShortSpec("remote-baseline", 5))
			require.NoError(t, err)
			require.NotEmpty(t, h.Calls)
			for _, c := range h.Calls {
				require.True(t, c.OK(), "call %d %v: class %v status %d err %q", c.Seq, c.Op, c.Class, c.Status, h.ErrorText(c))
			}
			verdicts := harness.Judge(h, checks...)
			require.Len(t, verdicts, len(checks))
			for _, v := range verdicts {
				switch {
				case tt.withAdmins || !serverTruth[v.Check]:
					assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
				default:
					assert.Equal(t, harness.StatusNotApplicable, v.Status, "without server truth %s is never passed: %s", v.Check, v)
				}
			}
		})
	}
}

func TestRemoteWithoutAdminURLsRefusesServerSideActions(t *testing.T) {
	w := startRemoteWorld(t)
	env := newRemote(t, w.config(false))
	ctx := harnesstest.Ctx(t)

	_, err := env.Observe(ctx, fakeservers.Payment)
	assert.ErrorIs(t, err, harness.ErrNoServerTruth)
	_, err = env.OpenConnections(ctx, fakeservers.Payment)
	assert.ErrorIs(t, err, harness.ErrNoServerTruth)
	_, err = env.CloseIdleConns(ctx, fakeservers.Payment)
	assert.ErrorIs(t, err, harness.ErrNoServerTruth, "without an admin API the leak checks count every open connection as held")
	_, err = env.CloseIdleConns(ctx, "billing")
	assert.ErrorIs(t, err, harness.ErrUnknownService)
	_, err = env.Observe(ctx, "billing")
	assert.ErrorIs(t, err, harness.ErrUnknownService)

	err = env.Faults().Apply(ctx, harness.SetHTTPFaults(fakeservers.Payment, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 503}))
	require.Error(t, err)
	assert.ErrorIs(t, err, harness.ErrNoServerTruth)
	assert.Contains(t, err.Error(), "admin API", "the error says what is missing")

	// Toxiproxy faults still work: a latency toxic reaches the client.
	require.NoError(t, env.Faults().Apply(ctx, harness.AddToxic(fakeservers.Inventory, harness.Latency("slow", harness.Downstream, 300*time.Millisecond, 0))))
	inv := serviceNamed(t, env.Services(), fakeservers.Inventory)
	tr := harnesstest.StdTransport(inv, 1)
	t.Cleanup(tr.CloseIdleConnections)
	begin := time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(inv.BaseURL + "/v1/items/SKU-1")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(begin), 225*time.Millisecond)
	require.NoError(t, env.Reset(ctx, harness.DefaultSeed))
}

func TestRemoteCloseDeletesOnlyTheProxiesItCreated(t *testing.T) {
	w := startRemoteWorld(t)
	ctx := harnesstest.Ctx(t)
	// Someone else's proxy for payment, with the same upstream: reused.
	other := NewFaultDriver(w.toxi.URL(), nil, 0)
	_, err := other.CreateProxy(ctx, fakeservers.Payment, "127.0.0.1:0", w.upstreams[fakeservers.Payment])
	require.NoError(t, err)

	env, err := NewRemote(ctx, w.config(true))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{fakeservers.Inventory, fakeservers.Notification}, env.Created())
	require.NoError(t, env.Close())
	require.NoError(t, env.Close(), "Close is idempotent")

	_, err = other.Proxy(ctx, fakeservers.Payment)
	assert.NoError(t, err, "the reused proxy is left in place")
	for _, svc := range []string{fakeservers.Inventory, fakeservers.Notification} {
		_, err = other.Proxy(ctx, svc)
		assert.ErrorIs(t, err, harness.ErrUnknownService, "proxy %s was deleted", svc)
	}

	// The same name with another upstream is a conflict, not a silent reuse.
	cfg := w.config(true)
	cfg.Upstreams = map[string]string{fakeservers.Payment: "127.0.0.1:1"}
	cfg.AdminURLs = nil
	_, err = NewRemote(ctx, cfg)
	require.ErrorIs(t, err, harness.ErrProxyExists)
	assert.Contains(t, err.Error(), "goes to "+w.upstreams[fakeservers.Payment])
}

func TestRemoteUnreachableToxiproxyFailsFastAndClearly(t *testing.T) {
	// A port that was free a moment ago: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	// A listener that never answers: the call timeout must end the wait.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })

	tests := []struct {
		name, url string
	}{
		{"connection refused", refused},
		{"never answers", "http://" + silent.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			_, err := NewRemote(context.Background(), RemoteConfig{
				ToxiproxyURL: tt.url,
				Upstreams:    map[string]string{fakeservers.Payment: "127.0.0.1:1"},
				CallTimeout:  300 * time.Millisecond,
			})
			require.ErrorIs(t, err, ErrToxiproxyUnreachable)
			assert.Contains(t, err.Error(), EnvToxiproxyURL, "the error says what to check")
			assert.Less(t, time.Since(begin), 10*time.Second, "bounded by the call timeout")
		})
	}
}

func TestRemoteConfigValidationAndEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    RemoteConfig
		wantErr string
	}{
		{
			name: "everything",
			environ: []string{
				"POOLPROOF_TOXIPROXY_URL=http://127.0.0.1:8474", "POOLPROOF_UPSTREAM_PAYMENT=payment:8443",
				"POOLPROOF_ADMIN_PAYMENT=http://127.0.0.1:9001", "POOLPROOF_CA_FILE=/tmp/ca.pem",
				"POOLPROOF_LISTEN_HOST=127.0.0.1", "HOME=/root",
			},
			want: RemoteConfig{
				ToxiproxyURL: "http://127.0.0.1:8474", Upstreams: map[string]string{"payment": "payment:8443"},
				AdminURLs: map[string]string{"payment": "http://127.0.0.1:9001"}, CAFile: "/tmp/ca.pem", ListenHost: "127.0.0.1",
			},
		},
		{name: "no toxiproxy", environ: []string{"POOLPROOF_UPSTREAM_PAYMENT=payment:8443"}, wantErr: EnvToxiproxyURL + " is not set"},
		{name: "no upstream", environ: []string{"POOLPROOF_TOXIPROXY_URL=http://127.0.0.1:8474"}, wantErr: "no " + EnvUpstreamPrefix + "<SERVICE>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := remoteConfigFrom(tt.environ)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidRemoteConfig)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	bad := []struct {
		name    string
		cfg     RemoteConfig
		wantErr string
	}{
		{"bad url", RemoteConfig{ToxiproxyURL: "toxiproxy:8474", Upstreams: map[string]string{"payment": "a:1"}}, "RemoteConfig.ToxiproxyURL"},
		{"bad upstream", RemoteConfig{ToxiproxyURL: "http://127.0.0.1:1", Upstreams: map[string]string{"payment": "nohost"}}, `RemoteConfig.Upstreams["payment"]`},
		{"admin without upstream", RemoteConfig{ToxiproxyURL: "http://127.0.0.1:1", Upstreams: map[string]string{"payment": "a:1"}, AdminURLs: map[string]string{"inventory": "http://127.0.0.1:2"}}, `RemoteConfig.AdminURLs["inventory"]`},
		{"missing CA file", RemoteConfig{ToxiproxyURL: "http://127.0.0.1:1", Upstreams: map[string]string{"payment": "a:1"}, CAFile: "/nonexistent/ca.pem"}, "RemoteConfig.CAFile"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRemote(context.Background(), tt.cfg)
			require.ErrorIs(t, err, ErrInvalidRemoteConfig)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestAPIGateLeavesNoIdleConnection: behind a keep-alive API (an official
// Toxiproxy), the fault driver's calls through the gate leave no idle
// connection goroutine in http.DefaultTransport once they return.
func TestAPIGateLeavesNoIdleConnection(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(api.Close)
	before := goleak.IgnoreCurrent()

	g, err := startAPIGate(api.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close() })
	d := NewFaultDriver(g.URL(), nil, time.Second)
	for range 3 {
		require.NoError(t, d.Reset(harnesstest.Ctx(t)))
	}
	require.NoError(t, g.Close())
	assert.NoError(t, goleak.Find(before), "no connection of the driver outlives its call")

	// Without the gate the same calls leave one behind: the test can fail.
	d = NewFaultDriver(api.URL, nil, time.Second)
	require.NoError(t, d.Reset(harnesstest.Ctx(t)))
	err = goleak.Find(before)
	assert.Error(t, err, "a keep-alive API leaves an idle DefaultTransport connection")
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	runtime.Gosched()
	assert.NoError(t, goleak.Find(before))
}
