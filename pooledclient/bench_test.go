package pooledclient

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// The client is compared with a bare http.Transport configured the same way
// (same limits and timeouts), on loopback keep-alive, in one run:
//
//	go test -run '^$' -bench . -benchmem ./pooledclient/
//
// Goals: BenchmarkClient >= 95% of BenchmarkBareTransport's throughput with
// at most 3 more allocations per request; BenchmarkBreakerSuccess no slower
// than BenchmarkGobreakerSuccess and 0 allocs.

func benchServer(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"sku":"A-1","stock":42}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchConfig(b *testing.B, url string) Config {
	b.Helper()
	cfg, err := DefaultConfig(Inventory, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MinConns = 0
	return cfg
}

func benchCall(b *testing.B, do func(*http.Request) (*http.Response, error), req *http.Request) {
	resp, err := do(req)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
}

func BenchmarkBareTransport(b *testing.B) {
	srv := benchServer(b)
	cfg := benchConfig(b, srv.URL)
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	b.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/items/A-1", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchCall(b, tr.RoundTrip, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchCall(b, tr.RoundTrip, req)
	}
}

func BenchmarkClient(b *testing.B) {
	srv := benchServer(b)
	c, err := NewClient(benchConfig(b, srv.URL), WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/items/A-1", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchCall(b, c.Do, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchCall(b, c.Do, req)
	}
}

var benchBreakerCfg = BreakerConfig{ConsecutiveFailures: 5, FailureRate: 0.5, Window: 10 * time.Second, MinCalls: 20, OpenDelay: time.Second}

func BenchmarkBreakerSuccess(b *testing.B) {
	br := newBreaker(benchBreakerCfg, RealClock{}, nil)
	b.ReportAllocs()
	for b.Loop() {
		tok, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		br.Done(tok, false)
	}
}

// gobreakerSettings mirror benchBreakerCfg: a 10s rolling window of 10
// buckets, trip on 5 consecutive failures or a 50% rate over 20 calls.
func gobreakerSettings() gobreaker.Settings {
	return gobreaker.Settings{
		Name: "bench", Interval: 10 * time.Second, BucketPeriod: time.Second, Timeout: time.Second,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= 5 || (c.Requests >= 20 && c.TotalFailures*2 >= c.Requests)
		},
	}
}

func BenchmarkGobreakerSuccess(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreakerSettings())
	ok := func() (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cb.Execute(ok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGobreakerTwoStepSuccess is gobreaker's API for outcomes known
// later (at body close), the one the client would need.
func BenchmarkGobreakerTwoStepSuccess(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreakerSettings())
	b.ReportAllocs()
	for b.Loop() {
		done, err := cb.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}
