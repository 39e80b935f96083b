// Package harnesstest holds what the tests of the harness and of its
// environments share: a short run spec, a bounded test context and the
// plain, well-configured client a careful team would certify.
package harnesstest

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// StdContract is what StdClientFactory's client declares: its pool of 16
// connections and its 2s timeout; no retries, no breaker.
var StdContract = harness.Contract{MaxConns: 16, RequestTimeout: 2 * time.Second, MaxAttempts: 1}

// ShortSpec is a 600ms closed loop of 4 workers over every service, held
// to StdContract.
func ShortSpec(name string, seed int64) harness.RunSpec {
	return harness.RunSpec{
		Scenario: name,
		Seed:     seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: 600 * time.Millisecond, Workers: 4, Mix: harness.Mix{Inventory: 2, Payment: 1, Notification: 1}},
		Profile:  harness.Profile{Default: StdContract},
	}
}

// Ctx is a context that ends after a minute or with the test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// StdTransport is a sensibly configured transport: bounded pool, TLS
// trusting only the service's CA.
func StdTransport(svc harness.Service, maxConns int) *http.Transport {
	return &http.Transport{
		MaxConnsPerHost:     maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     30 * time.Second,
		TLSClientConfig:     &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12},
	}
}

// StdClientFactory builds the plain *http.Client a careful team would use.
func StdClientFactory(svc harness.Service) (harness.Client, error) {
	return &http.Client{Timeout: 2 * time.Second, Transport: StdTransport(svc, 16)}, nil
}
