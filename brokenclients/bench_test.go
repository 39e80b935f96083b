package brokenclients

import (
	"net/http"
	"testing"

	"github.com/poolproof/poolproof/fakeservers"
)

// BenchmarkCallCost puts a number on what connection churn costs: the same
// TLS call through the reference (one reused connection) and through
// body-not-read-to-eof (a new connection and handshake per call). Compare
// the ns/op of the two within one run.
func BenchmarkCallCost(b *testing.B) {
	for _, s := range []subject{
		reference,
		{name: "body-not-read-to-eof", build: newBodyNotReadToEOF},
	} {
		b.Run(s.name, func(b *testing.B) {
			srv, svc := startService(b, fakeservers.Inventory, true)
			c, err := s.build(svc)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { closeIdle(c) })
			url := svc.BaseURL + "/v1/catalog?size=1024"
			b.ReportAllocs()
			for b.Loop() {
				got := get(c, url, "")
				if got.err != nil || got.status != http.StatusOK {
					b.Fatalf("call: %v (status %d)", got.err, got.status)
				}
			}
			b.ReportMetric(float64(srv.Stats().Accepted)/float64(b.N), "conns/op")
		})
	}
}
