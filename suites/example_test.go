package suites_test

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/scenarios"
	"github.com/poolproof/poolproof/suites"
)

// plainContract is what a plain, well-configured *http.Client can honestly
// promise: a pool bound and a request timeout, no retries and no breaker
// (BreakerOpenDelay 0 makes the breaker checks not applicable).
var plainContract = harness.Contract{
	MaxConns:       8,
	PoolWait:       250 * time.Millisecond,
	RequestTimeout: 2 * time.Second,
	MaxAttempts:    1,
	RecoveryTime:   3 * time.Second,
}

func plainFactory(svc harness.Service) (harness.Client, error) {
	c := plainContract
	t := &http.Transport{
		Proxy:               nil, // the services are on loopback; never route through a proxy from the environment
		MaxConnsPerHost:     c.MaxConns,
		MaxIdleConnsPerHost: c.MaxConns,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: c.RequestTimeout,
		ForceAttemptHTTP2:   false,
	}
	if svc.CAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t, Timeout: c.RequestTimeout}, nil
}

// plainMeets is the Quick catalog without pool-exhaustion, which a plain
// *http.Client does not meet: Go's transport makes a call wait for a free
// connection without limit (MaxConnsPerHost has no wait bound), so under
// exhaustion calls queue until Client.Timeout instead of failing within
// PoolWait, and connections the timeout abandons let the server briefly see
// more than MaxConns. That is a real gap of a plain *http.Client, not a flaw
// of the scenario: a client with a pool-wait bound (package pooledclient)
// passes it.
func plainMeets() []harness.Scenario {
	var out []harness.Scenario
	for _, s := range scenarios.Quick() {
		if s.Name != scenarios.PoolExhaustion {
			out = append(out, s)
		}
	}
	return out
}

var _ = suites.Certify(plainFactory, harness.Profile{Default: plainContract}, suites.WithScenarios(plainMeets()))

func TestPlainClientCertification(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "plain http.Client certification")
}
