package env

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// BenchmarkToxiproxyOverhead measures what the embedded Toxiproxy (no toxic)
// costs a request: the same client and the same fake service, once directly
// and once through the proxy, interleaved request by request so that noise
// on a shared machine hits both paths alike. It reports each path's median
// latency (from an HDR histogram), the added median, and the sequential
// throughput through the proxy as a ratio of the direct one.
//
//	go test -run '^$' -bench ToxiproxyOverhead -benchtime 3000x ./harness
func BenchmarkToxiproxyOverhead(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []Option
		h2   bool
	}{
		{"tls-http1", []Option{WithHTTP2(false)}, false},
		{"tls-h2", nil, true},
		{"plain-http1", []Option{WithTLS(false)}, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env, err := NewEmbedded(context.Background(), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = env.Close() })
			var svc harness.Service
			for _, s := range env.Services() {
				if s.Name == fakeservers.Inventory {
					svc = s
				}
			}
			tr := &http.Transport{ForceAttemptHTTP2: tc.h2, MaxIdleConnsPerHost: 4}
			if svc.CAs != nil {
				tr.TLSClientConfig = &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12}
			}
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			scheme := svc.BaseURL[:strings.Index(svc.BaseURL, "://")]
			path := "/v1/items/sku-42"
			proxied := svc.BaseURL + path
			direct := scheme + "://" + env.UpstreamAddr(svc.Name) + path

			do := func(url string) time.Duration {
				start := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %v %d", url, err, resp.StatusCode)
				}
				return time.Since(start)
			}
			// Warm both pools (TLS handshakes, h2 settings) outside the timing.
			for range 20 {
				do(direct)
				do(proxied)
			}

			hDirect := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			hProxied := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			var sumDirect, sumProxied time.Duration
			b.ResetTimer()
			for b.Loop() {
				d := do(direct)
				p := do(proxied)
				sumDirect += d
				sumProxied += p
				_ = hDirect.RecordValue(max(1, d.Microseconds()))
				_ = hProxied.RecordValue(max(1, p.Microseconds()))
			}
			b.StopTimer()

			p50d := hDirect.ValueAtQuantile(50)
			p50p := hProxied.ValueAtQuantile(50)
			b.ReportMetric(float64(p50d), "direct-p50-us")
			b.ReportMetric(float64(p50p), "proxied-p50-us")
			b.ReportMetric(float64(p50p-p50d), "added-p50-us")
			b.ReportMetric(float64(hDirect.ValueAtQuantile(99)), "direct-p99-us")
			b.ReportMetric(float64(hProxied.ValueAtQuantile(99)), "proxied-p99-us")
			if sumProxied > 0 {
				// Sequential requests: throughput is the inverse of the mean latency.
				b.ReportMetric(float64(sumDirect)/float64(sumProxied), "throughput-ratio")
			}
		})
	}
}
