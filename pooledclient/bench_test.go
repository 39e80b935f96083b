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
// Goals: the client's throughput >= 95% of the bare transport's (the
// client/bare metric of BenchmarkClientVsBareTransport) and at most 3 more
// allocations per request (BenchmarkClient vs BenchmarkBareTransport); BenchmarkBreakerSuccess no slower
// than BenchmarkGobreakerSuccess and 0 allocs.

func benchServer(b testing.TB) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"sku":"A-1","stock":42}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchConfig(b testing.TB, url string) Config {
	b.Helper()
	cfg, err := DefaultConfig(Inventory, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MinConns = 0
	return cfg
}

func benchCall(b testing.TB, do func(*http.Request) (*http.Response, error), req *http.Request) {
	resp, err := do(req)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
}

// bareTransport is an http.Transport with the client's limits and timeouts
// and none of its machinery: the baseline the client is measured against.
func bareTransport(b testing.TB, cfg Config) *http.Transport {
	b.Helper()
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
	return tr
}

func benchClient(b testing.TB, cfg Config) *Client {
	b.Helper()
	c, err := NewClient(cfg, WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func benchRequest(b testing.TB, url string) *http.Request {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/v1/items/A-1", nil)
	if err != nil {
		b.Fatal(err)
	}
	return req
}

// bareAndClient builds both sides of the comparison against one server,
// with the same configuration, and the request they send.
func bareAndClient(b testing.TB) (*http.Transport, *Client, *http.Request) {
	b.Helper()
	srv := benchServer(b)
	cfg := benchConfig(b, srv.URL)
	return bareTransport(b, cfg), benchClient(b, cfg), benchRequest(b, srv.URL)
}

func BenchmarkBareTransport(b *testing.B) {
	srv := benchServer(b)
	tr := bareTransport(b, benchConfig(b, srv.URL))
	req := benchRequest(b, srv.URL)
	benchCall(b, tr.RoundTrip, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchCall(b, tr.RoundTrip, req)
	}
}

func BenchmarkClient(b *testing.B) {
	srv := benchServer(b)
	c := benchClient(b, benchConfig(b, srv.URL))
	req := benchRequest(b, srv.URL)
	benchCall(b, c.Do, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchCall(b, c.Do, req)
	}
}

// BenchmarkClientVsBareTransport measures the throughput ratio the goal is
// stated in. The two benchmarks above run seconds apart, and on a small
// shared machine the load changes between them by more than the client
// costs. Here every iteration makes one call through each, alternating
// which goes first, against the same server, so both see the same machine;
// the ratio of their summed times is reported as client/bare (1.0 = as fast
// as the bare transport, the goal is >= 0.95).
func BenchmarkClientVsBareTransport(b *testing.B) {
	tr, c, req := bareAndClient(b)
	benchCall(b, tr.RoundTrip, req)
	benchCall(b, c.Do, req)
	var bare, client time.Duration
	timed := func(do func(*http.Request) (*http.Response, error)) time.Duration {
		start := time.Now()
		benchCall(b, do, req)
		return time.Since(start)
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			bare += timed(tr.RoundTrip)
			client += timed(c.Do)
		} else {
			client += timed(c.Do)
			bare += timed(tr.RoundTrip)
		}
		i++
	}
	if client > 0 {
		b.ReportMetric(float64(bare)/float64(client), "client/bare")
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
