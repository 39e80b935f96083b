package catalogclient_test

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/scenarios"
	"github.com/poolproof/poolproof/suites"

	"example.com/checkout/catalogclient"
)

// The contract the team promises its callers, per service.
func contract() harness.Profile {
	d := catalogclient.Defaults()
	c := harness.Contract{
		MaxConns:       d.MaxConns,
		RequestTimeout: d.RequestTimeout,
		IdleTimeout:    d.IdleTimeout,
		MaxAttempts:    1, // no retries
		RecoveryTime:   3 * time.Second,
	}
	return harness.Profile{Default: c}
}

func factory(svc harness.Service) (harness.Client, error) {
	cfg := catalogclient.Defaults()
	cfg.RootCAs = svc.CAs
	return catalogclient.New(cfg), nil
}

// POOLPROOF_PROFILE=standard runs the whole catalog (the nightly job); the
// default is the quick one, for every push.
var _ = suites.Certify(factory, contract(), profileOption(), suites.WithReport("poolproof-report", "checkout catalogclient"))

func profileOption() suites.Option {
	if os.Getenv("POOLPROOF_PROFILE") == "standard" {
		return suites.WithScenarios(scenarios.Standard())
	}
	return suites.WithQuick()
}

func TestCertify(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "catalogclient certification")
}
