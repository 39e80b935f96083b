package fakeservers

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start runs a fake service for the test and closes it at cleanup.
func start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = Inventory
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

type clientOpt func(*http.Transport)

// client builds a client for s that trusts only s's CA.
func client(t testing.TB, s *Server, opts ...clientOpt) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true}
	if s.CA() != nil {
		tr.TLSClientConfig = tlsClientConfig(s)
	}
	for _, o := range opts {
		o(tr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

type reply struct {
	resp    *http.Response
	body    []byte
	readErr error
}

// do sends one request and reads the whole body.
func do(t testing.TB, c *http.Client, method, url, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return reply{resp: resp, body: b, readErr: rerr}
}

// eventually polls cond every 5ms for at most 5s (generous: the machine is busy).
func eventually(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, msg)
}

// tlsClientConfig trusts only s's CA, as every client under test must.
func tlsClientConfig(s *Server) *tls.Config {
	return &tls.Config{RootCAs: s.CA().Pool(), ClientSessionCache: tls.NewLRUClientSessionCache(8)}
}
