package report_test

import (
	"io"
	"testing"

	"github.com/poolproof/poolproof/report"
)

// BenchmarkWriteHTML measures the page of the shared two-scenario
// certification (timelines and ten charts included).
func BenchmarkWriteHTML(b *testing.B) {
	cert, err := realCert()
	if err != nil {
		b.Fatal(err)
	}
	calls := 0
	for _, r := range cert.Results {
		calls += len(r.History.Calls)
	}
	b.ReportMetric(float64(calls), "calls")
	b.ReportAllocs()
	for b.Loop() {
		if err := report.WriteHTML(io.Discard, cert, report.Meta{Client: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}
