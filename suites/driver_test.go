package suites_test

import (
	"fmt"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/drivertest"
	"github.com/poolproof/poolproof/scenarios"
	"github.com/poolproof/poolproof/suites"
)

// goDriverDir holds drivers/go, built before the specs run: the driver's
// command is declared with them, before any spec runs.
var goDriverDir = filepath.Join(os.TempDir(), fmt.Sprintf("poolproof-suites-go-driver-%d", os.Getpid()))

var _ = BeforeSuite(func() {
	Expect(drivertest.BuildGoDriver(filepath.Join(goDriverDir, "go-driver"))).To(Succeed())
	DeferCleanup(os.RemoveAll, goDriverDir)
})

var _ = Describe("a driver", func() {
	suites.CertifyDriver([]string{filepath.Join(goDriverDir, "go-driver")}, must(harness.LoadProfile("../drivers/go/contract.json")),
		suites.WithScenarios([]harness.Scenario{must(scenarios.Lookup(scenarios.Baseline))}))
})

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
