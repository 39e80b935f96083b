package fakeservers

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// The two benchmarks drive the same loopback HTTP/1.1 keep-alive client, in
// parallel, against the inventory hot path (GET /v1/items/{sku}) and against
// a bare net/http handler that writes a body of the same size. Compare their
// ns/op in one run: the instrumented server must keep at least 80% of the
// bare throughput.
//
//	go test -run '^$' -bench 'FakeService|BareHandler' -benchmem -benchtime 3s -count 3 ./fakeservers/

const benchParallelism = 4 // client goroutines per GOMAXPROCS

func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 0, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func benchLoop(b *testing.B, c *http.Client, url string) {
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkFakeService(b *testing.B) {
	s, err := Start(context.Background(), Config{Service: Inventory})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	benchLoop(b, benchClient(b), s.URL()+"/v1/items/SKU-000042")
}

func BenchmarkBareHandler(b *testing.B) {
	body := renderItem("SKU-000042")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close(); <-done })
	benchLoop(b, benchClient(b), "http://"+ln.Addr().String()+"/v1/items/SKU-000042")
}
