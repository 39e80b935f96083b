package driver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/drivertest"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/scenarios"
)

func TestGoDriverCertifiesTheQuickCatalog(t *testing.T) {
	testenv.SkipUnderRace(t)
	bin := drivertest.GoDriver(t)
	profile, err := harness.LoadProfile("../drivers/go/contract.json")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := env.NewEmbedded(ctx)
	require.NoError(t, err)
	defer e.Close()
	f := driver.NewFactory(ctx, []string{bin}, e.Services(), profile)
	defer f.Close()

	cert, err := harness.Certify(ctx, e, f.Client, profile, scenarios.Quick())
	require.NoError(t, err)
	assert.Equal(t, "go-net-http", f.Info().Driver)
	var failed []string
	for _, r := range cert.Results {
		var b strings.Builder
		for _, v := range r.Verdicts {
			b.WriteString("\n    " + v.String())
			if v.Status == harness.StatusFail {
				failed = append(failed, v.String())
			}
		}
		t.Logf("%-20s %6.2fs calls=%d%s", r.Scenario, r.Elapsed.Seconds(), len(r.History.Calls), b.String())

		require.Len(t, r.History.Leaks.Processes, 1, "one driver process per run")
		p := r.History.Leaks.Processes[0]
		assert.True(t, p.Measured, "%s: %s", r.Scenario, p.Err)
		for _, v := range r.Verdicts {
			switch v.Check {
			case check.IDLeakGoroutines:
				assert.Equal(t, harness.StatusNotApplicable, v.Status, "never passed for a driver")
			case check.IDLeakFDs, check.IDLeakServerConns, harness.CheckDriver:
				assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
			}
		}
	}
	require.True(t, cert.Passed(), "the Go driver with its contract passes the quick catalog:\n%s", strings.Join(failed, "\n"))
	drivertest.RequireNothingLeft(t, 0)
}
