package fakeservers

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThreeClientsShowThreeConnections(t *testing.T) {
	s := start(t, Config{Service: Inventory})
	var clients []*http.Client
	for range 3 {
		c := client(t, s)
		clients = append(clients, c)
		r := do(t, c, "GET", s.URL()+"/v1/items/SKU-1", "")
		require.Equal(t, 200, r.resp.StatusCode)
	}
	st := s.Stats()
	assert.Equal(t, 3, st.Accepted)
	assert.Equal(t, 3, st.OpenConnections)
	assert.Equal(t, 3, st.PeakOpen)
	assert.Equal(t, 0, st.BusyConnections)
	require.Len(t, st.Connections, 3)
	for _, cr := range st.Connections {
		assert.Equal(t, 1, cr.Requests)
		assert.Equal(t, ProtoHTTP1, cr.Protocol)
		assert.True(t, cr.Closed.IsZero())
		assert.False(t, cr.TLS)
	}

	for _, c := range clients {
		c.CloseIdleConnections()
	}
	eventually(t, func() bool { return s.Stats().OpenConnections == 0 }, "server observes the three closes")
	st = s.Stats()
	assert.Equal(t, 3, st.PeakOpen, "peak stays until reset")
	for _, cr := range st.Connections {
		assert.False(t, cr.Closed.IsZero())
		assert.False(t, cr.Closed.Before(cr.Accepted))
	}

	s.Reset()
	st = s.Stats()
	assert.Empty(t, st.Connections, "closed connections are forgotten")
	assert.Zero(t, st.Accepted)
	assert.Zero(t, st.PeakOpen)
}

func TestBusyConnectionsAndPeaks(t *testing.T) {
	s := start(t, Config{Service: Inventory})
	require.NoError(t, s.SetFaults(Fault{Kind: FaultDelay, Delay: Duration(400 * time.Millisecond)}))
	c := client(t, s)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { do(t, c, "GET", s.URL()+"/v1/items/slow", "") })
	}
	eventually(t, func() bool { return s.Stats().BusyConnections == 4 }, "four requests in flight on four connections")
	wg.Wait()
	st := s.Stats()
	assert.Equal(t, 0, st.BusyConnections)
	assert.Equal(t, 4, st.PeakBusy)
	assert.Equal(t, 4, st.PeakOpen)
	for _, rec := range st.Requests {
		assert.Equal(t, FaultDelay, rec.Fault)
	}
}

func TestMaxRequestsPerConnection(t *testing.T) {
	const limit = 3
	for _, tt := range []struct {
		name  string
		cfg   Config
		proto string
	}{
		{"http1", Config{Service: Inventory, KeepAlive: KeepAlive{MaxRequestsPerConn: limit}}, ProtoHTTP1},
		{"h2 over tls", Config{Service: Inventory, TLS: true, KeepAlive: KeepAlive{MaxRequestsPerConn: limit}}, ProtoH2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.cfg)
			c := client(t, s)
			for i := 1; i <= 2*limit+1; i++ {
				r := do(t, c, "GET", s.URL()+"/v1/items/SKU-1", "")
				require.Equal(t, 200, r.resp.StatusCode)
				if tt.proto == ProtoHTTP1 {
					assert.Equal(t, i%limit == 0, r.resp.Close, "request %d carries Connection: close", i)
				}
				if i%limit == 0 {
					// The close (h1) or GOAWAY (h2) races the next request; wait for it.
					want := i / limit
					eventually(t, func() bool { return s.Stats().Accepted-s.Stats().OpenConnections >= want }, "connection closed after the limit")
				}
			}
			st := s.Stats()
			require.Len(t, st.Connections, 3)
			for i, cr := range st.Connections {
				assert.Equal(t, tt.proto, cr.Protocol)
				if i < 2 {
					assert.Equal(t, limit, cr.Requests)
					assert.False(t, cr.Closed.IsZero())
				} else {
					assert.Equal(t, 1, cr.Requests)
				}
			}
		})
	}
}

func TestIdleTimeoutChangesAtRunTime(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"http1", Config{Service: Inventory}},
		{"h2 over tls", Config{Service: Inventory, TLS: true}},
		{"h2c", Config{Service: Inventory, H2C: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.cfg)
			c := client(t, s, h2c(tt.cfg.H2C))
			do(t, c, "GET", s.URL()+"/v1/items/SKU-1", "")
			// No idle timeout yet: the connection outlives a short idle period.
			time.Sleep(150 * time.Millisecond)
			require.Equal(t, 1, s.Stats().OpenConnections)

			require.NoError(t, s.SetKeepAlive(KeepAlive{IdleTimeout: Duration(100 * time.Millisecond)}))
			do(t, c, "GET", s.URL()+"/v1/items/SKU-1", "")
			lastDone := time.Now()
			eventually(t, func() bool { return s.Stats().OpenConnections == 0 }, "the new idle timeout closes the connection")
			st := s.Stats()
			require.Len(t, st.Connections, 1, "the second request reused the connection")
			cr := st.Connections[0]
			assert.Equal(t, 2, cr.Requests)
			if tt.cfg.TLS || tt.cfg.H2C {
				assert.Equal(t, ProtoH2, cr.Protocol)
			}
			assert.GreaterOrEqual(t, cr.Closed.Sub(lastDone), 60*time.Millisecond, "closed after the idle period, not at once")

			// Back to no timeout: a new connection stays. (A fresh client: an h2
			// idle close is abrupt, so the old client may race it, as it would
			// against a middlebox that drops idle connections.)
			require.NoError(t, s.SetKeepAlive(KeepAlive{}))
			do(t, client(t, s, h2c(tt.cfg.H2C)), "GET", s.URL()+"/v1/items/SKU-1", "")
			time.Sleep(250 * time.Millisecond)
			assert.Equal(t, 1, s.Stats().OpenConnections)
		})
	}
}

func TestReadHeaderTimeoutChangesAtRunTime(t *testing.T) {
	s := start(t, Config{Service: Inventory})
	require.NoError(t, s.SetKeepAlive(KeepAlive{ReadHeaderTimeout: Duration(100 * time.Millisecond)}))
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.WriteString(conn, "GET /v1/items/SKU-1 HTTP/1.1\r\nHost: x\r\n") // headers never finish
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	t0 := time.Now()
	_, err = bufio.NewReader(conn).ReadString('\n')
	require.Error(t, err, "the server hangs up on a slow header")
	var ne net.Error
	isTimeout := errors.As(err, &ne) && ne.Timeout()
	assert.False(t, isTimeout, "closed by the server, not by our own 5s deadline: %v", err)
	assert.Less(t, time.Since(t0), 4*time.Second)
	eventually(t, func() bool { return s.Stats().OpenConnections == 0 }, "the close is recorded")
}

func TestHTTP2OverTLS(t *testing.T) {
	s := start(t, Config{Service: Inventory, TLS: true})
	require.True(t, len(s.URL()) > 8 && s.URL()[:8] == "https://")
	c := client(t, s)
	var wg sync.WaitGroup
	// Warm up one connection, then share it between concurrent requests.
	do(t, c, "GET", s.URL()+"/v1/items/SKU-0", "")
	for i := range 8 {
		wg.Go(func() {
			r := do(t, c, "GET", s.URL()+"/v1/items/SKU-"+string(rune('a'+i)), "")
			assert.Equal(t, 200, r.resp.StatusCode)
			assert.Equal(t, 2, r.resp.ProtoMajor)
			assert.True(t, VerifyDigest(r.resp.Header.Get(HeaderBodyDigest), r.body))
		})
	}
	wg.Wait()
	st := s.Stats()
	require.Len(t, st.Connections, 1)
	cr := st.Connections[0]
	assert.Equal(t, ProtoH2, cr.Protocol)
	assert.Equal(t, 9, cr.Requests)
	assert.True(t, cr.TLS)
	assert.False(t, cr.TLSResumed)
	ids := map[uint64]bool{}
	for _, rec := range st.Requests {
		ids[rec.ConnID] = true
	}
	assert.Equal(t, map[uint64]bool{cr.ID: true}, ids)
}

func TestTLSResumptionAndHTTP1OverTLS(t *testing.T) {
	s := start(t, Config{Service: Payment, TLS: true, DisableHTTP2: true})
	cache := tls.NewLRUClientSessionCache(4)
	for range 2 {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CA().Pool(), ClientSessionCache: cache}}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		r := do(t, c, "GET", s.URL()+"/v1/catalog?size=100", "")
		assert.Equal(t, 1, r.resp.ProtoMajor)
		tr.CloseIdleConnections()
	}
	eventually(t, func() bool { return s.Stats().OpenConnections == 0 }, "both closed")
	st := s.Stats()
	require.Len(t, st.Connections, 2)
	assert.False(t, st.Connections[0].TLSResumed)
	assert.True(t, st.Connections[1].TLSResumed, "second connection resumed with a session ticket")
	for _, cr := range st.Connections {
		assert.Equal(t, ProtoHTTP1, cr.Protocol)
		assert.True(t, cr.TLS)
	}
}

func TestTLSIsVerifiedAgainstTheSharedCA(t *testing.T) {
	ca, err := NewCA()
	require.NoError(t, err)
	a := start(t, Config{Service: Payment, TLS: true, CA: ca})
	b := start(t, Config{Service: Notification, TLS: true, CA: ca})
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, s := range []*Server{a, b} {
		assert.Same(t, ca, s.CA())
		r := do(t, c, "GET", s.URL()+"/v1/catalog?size=100", "")
		assert.Equal(t, 200, r.resp.StatusCode)
		// The leaf also names localhost and the service names.
		leaf := r.resp.TLS.PeerCertificates[0]
		assert.NoError(t, leaf.VerifyHostname("localhost"))
		assert.NoError(t, leaf.VerifyHostname(s.Service()))
		assert.NoError(t, leaf.VerifyHostname("::1"))
	}

	// A client that trusts another CA is refused: verification is real.
	other, err := NewCA()
	require.NoError(t, err)
	tr2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: other.Pool()}}
	t.Cleanup(tr2.CloseIdleConnections)
	_, err = (&http.Client{Transport: tr2, Timeout: 10 * time.Second}).Get(a.URL() + "/v1/catalog")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")

	// The CA survives a round trip through PEM, for separate processes.
	keyPEM, err := ca.KeyPEM()
	require.NoError(t, err)
	loaded, err := LoadCA(ca.PEM(), keyPEM)
	require.NoError(t, err)
	assert.True(t, loaded.Certificate().Equal(ca.Certificate()))
}

func TestH2C(t *testing.T) {
	s := start(t, Config{Service: Notification, H2C: true})
	c := client(t, s, func(tr *http.Transport) {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	})
	for range 3 {
		r := do(t, c, "POST", s.URL()+"/v1/notifications", `{"channel":"sms","recipient":"+3100"}`)
		assert.Equal(t, http.StatusAccepted, r.resp.StatusCode)
		assert.Equal(t, 2, r.resp.ProtoMajor)
	}
	// HTTP/1.1 still works on the same port.
	r := do(t, client(t, s), "GET", s.URL()+"/v1/catalog?size=100", "")
	assert.Equal(t, 1, r.resp.ProtoMajor)
	st := s.Stats()
	require.Len(t, st.Connections, 2)
	assert.Equal(t, ProtoH2, st.Connections[0].Protocol)
	assert.Equal(t, 3, st.Connections[0].Requests)
	assert.Equal(t, ProtoHTTP1, st.Connections[1].Protocol)
}

func TestCloseClosesConnectionsAndListeners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{Service: Inventory, TLS: true})
	require.NoError(t, err)
	c := client(t, s)
	do(t, c, "GET", s.URL()+"/v1/items/a", "")
	require.NoError(t, s.SetFaults(Fault{Kind: FaultSlowBody, BytesPerSecond: 100, Route: RouteCatalog}))
	started := make(chan struct{})
	go func() {
		req, _ := http.NewRequest("GET", s.URL()+"/v1/catalog?size=100000", nil)
		resp, err := c.Do(req)
		close(started)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	t0 := time.Now()
	require.NoError(t, s.Close())
	assert.Less(t, time.Since(t0), 4*time.Second)
	assert.Equal(t, 0, s.Stats().OpenConnections)
	_, err = net.DialTimeout("tcp", s.Addr(), time.Second)
	assert.Error(t, err, "service listener closed")
	_, err = net.DialTimeout("tcp", s.AdminURL()[len("http://"):], time.Second)
	assert.Error(t, err, "admin listener closed")
	assert.NoError(t, s.Close(), "Close is idempotent")
}

// h2c makes a client speak plain-text HTTP/2 with prior knowledge when on.
func h2c(on bool) clientOpt {
	return func(tr *http.Transport) {
		if on {
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
	}
}

// CloseIdle closes the connections between requests (HTTP/1.1) or with no
// open stream (HTTP/2), keeps the one serving a request, and says which is
// which; the admin API answers the same.
func TestCloseIdleClosesOnlyConnectionsWithNoRequestInFlight(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   Config
		proto string
	}{
		{"http/1.1", Config{Service: Inventory}, ProtoHTTP1},
		{"h2 over tls", Config{Service: Inventory, TLS: true}, ProtoH2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.cfg)
			adm := NewAdminClient(s.AdminURL())
			t.Cleanup(adm.Close)
			require.NoError(t, s.SetFaults(Fault{Kind: FaultDelay, Route: RouteCatalog, Delay: Duration(time.Minute)}))

			idle := client(t, s)
			do(t, idle, "GET", s.URL()+"/v1/items/SKU-1", "")
			do(t, idle, "GET", s.URL()+"/v1/items/SKU-2", "")

			// A second client, so its request has a connection of its own,
			// stays in flight until the test cancels it.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+RouteCatalog, nil)
			require.NoError(t, err)
			busy := client(t, s)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if resp, err := busy.Do(req); err == nil {
					_ = resp.Body.Close()
				}
			}()
			defer func() { cancel(); <-done }()
			eventually(t, func() bool { return s.ConnCounts().Busy == 1 && s.ConnCounts().Open == 2 }, "one idle connection and one serving a request")

			ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer icancel()
			got, err := adm.CloseIdle(ictx)
			require.NoError(t, err)
			require.Len(t, got.Closed, 1)
			require.Len(t, got.Busy, 1)
			assert.Equal(t, 2, got.Closed[0].Requests)
			assert.Zero(t, got.Closed[0].InFlight)
			assert.Equal(t, "GET "+RouteItem, got.Closed[0].LastRoute)
			assert.Equal(t, tt.proto, got.Closed[0].Protocol)
			assert.Equal(t, 1, got.Busy[0].InFlight)
			assert.Equal(t, "GET "+RouteCatalog, got.Busy[0].LastRoute)
			assert.False(t, got.Now.Before(got.Closed[0].Accepted))

			eventually(t, func() bool { return s.ConnCounts().Open == 1 }, "the idle connection is closed, the busy one kept")
			again, err := adm.CloseIdle(ictx)
			require.NoError(t, err)
			assert.Empty(t, again.Closed, "nothing idle is left")
			assert.Len(t, again.Busy, 1)

			// The client whose idle connection was closed dials a new one.
			r := do(t, idle, "GET", s.URL()+"/v1/items/SKU-3", "")
			assert.Equal(t, http.StatusOK, r.resp.StatusCode)
			assert.Equal(t, 3, s.ConnCounts().Accepted)
		})
	}
}
