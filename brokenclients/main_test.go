package brokenclients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain proves the tests clean up after the leaky clients: every leaked
// connection dies with its server, every leaked goroutine is released.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startService runs a fake service with faults for the test and returns
// the harness's view of it.
func startService(t testing.TB, service string, useTLS bool, faults ...fakeservers.Fault) (*fakeservers.Server, harness.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := fakeservers.Start(ctx, fakeservers.Config{Service: service, TLS: useTLS, Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	if len(faults) > 0 {
		require.NoError(t, s.SetFaults(faults...))
	}
	svc := harness.Service{Name: service, BaseURL: s.URL()}
	if useTLS {
		svc.CAs = s.CA().Pool()
	}
	return s, svc
}

// subject is a client under test: the reference or a gallery client.
type subject struct {
	name  string
	build func(harness.Service) (harness.Client, error)
}

func referenceFactory(svc harness.Service) (harness.Client, error) {
	cfg, err := ReferenceConfig(svc)
	if err != nil {
		return nil, err
	}
	return pooledclient.NewClient(cfg)
}

var reference = subject{name: "reference", build: referenceFactory}

func gallery(t *testing.T, name string) subject {
	t.Helper()
	e, err := Lookup(name)
	require.NoError(t, err)
	return subject{name: name, build: e.Factory}
}

// newClient builds s for svc and closes it at cleanup (before the server
// closes: cleanups run last-in first-out).
func newClient(t *testing.T, s subject, svc harness.Service) harness.Client {
	t.Helper()
	c, err := s.build(svc)
	require.NoError(t, err)
	if g, ok := c.(*goroutinePerCall); ok {
		t.Cleanup(func() { close(g.release) }) // its bug is to leak them; the tests must not
	}
	if r, ok := c.(*retryingClient); ok {
		t.Cleanup(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, cancel := range r.abandoned {
				cancel(nil)
			}
		})
	}
	t.Cleanup(func() {
		closeIdle(c)
		if cl, ok := c.(interface{ Close() error }); ok {
			require.NoError(t, cl.Close())
		}
	})
	return c
}

func closeIdle(c harness.Client) {
	if ci, ok := c.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// outcome is one finished call, its body read to the end and closed.
type outcome struct {
	status  int
	header  http.Header
	body    []byte
	err     error
	elapsed time.Duration
}

func call(ctx context.Context, c harness.Client, method, url, requestID string, body []byte, header http.Header) outcome {
	start := time.Now()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return outcome{err: err}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if requestID != "" {
		req.Header.Set(fakeservers.HeaderRequestID, requestID)
	}
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, header: resp.Header, body: b, err: err, elapsed: time.Since(start)}
}

func get(c harness.Client, url, requestID string) outcome {
	return call(context.Background(), c, http.MethodGet, url, requestID, nil, nil)
}

// concurrently runs n calls at once (released together) and returns their
// outcomes.
func concurrently(n int, do func(i int) outcome) []outcome {
	out := make([]outcome, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = do(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// attemptsOf returns the server's records of one logical call.
func attemptsOf(s *fakeservers.Server, requestID string) []fakeservers.RequestRecord {
	var rs []fakeservers.RequestRecord
	for _, r := range s.Stats().Requests {
		if r.RequestID == requestID {
			rs = append(rs, r)
		}
	}
	return rs
}

func gaps(rs []fakeservers.RequestRecord) []time.Duration {
	var g []time.Duration
	for i := 1; i < len(rs); i++ {
		g = append(g, rs[i].Arrived.Sub(rs[i-1].Arrived))
	}
	return g
}

// goroutinesIn counts the goroutines whose stack mentions fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

func chargeBody(t *testing.T, orderID string) []byte {
	t.Helper()
	b, err := json.Marshal(fakeservers.ChargeRequest{OrderID: orderID, Amount: 1299, Currency: "EUR"})
	require.NoError(t, err)
	return b
}

func itemURL(svc harness.Service, sku string) string { return svc.BaseURL + "/v1/items/" + sku }

func id(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
