package driver_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/drivertest"
	"github.com/poolproof/poolproof/scenarios"
)

// TestCertifyGivesABrokenDriverAClearVerdict: certified like any client, a
// driver that breaks the protocol gets a failed harness.driver verdict
// naming what it did, no other verdict passes on that run, the workload
// stops at once instead of running on against a dead client, and nothing
// of the driver is left.
func TestCertifyGivesABrokenDriverAClearVerdict(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := env.NewEmbedded(ctx)
	require.NoError(t, err)
	defer e.Close()
	baseline, err := scenarios.Lookup(scenarios.Baseline)
	require.NoError(t, err)
	baseline.Workload.Duration = time.Minute // ended long before by the broken driver

	for _, tc := range []struct {
		mode   string
		reason string
	}{
		{"crash", "exited (exit status 3) before it was told to"},
		{"garbage", `it printed a line that is not a protocol message (invalid character 'h' looking for beginning of value): "hello from the driver"`},
		{"unknown-id", "it answered call 1001, which it was never sent"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd, vars := fakeCmd(tc.mode)
			f := driver.NewFactory(ctx, cmd, e.Services(), harness.DefaultProfile(), driver.WithEnv(vars...))
			defer f.Close()
			cert, err := harness.Certify(ctx, e, f.Client, harness.DefaultProfile(), []harness.Scenario{baseline})
			require.NoError(t, err)
			r := cert.Results[0]
			for _, v := range r.Verdicts {
				t.Log(v)
			}
			assert.Less(t, r.History.Elapsed, 30*time.Second, "the workload stopped at the first call the dead driver could not serve")
			var verdict *harness.Verdict
			for i, v := range r.Verdicts {
				assert.NotEqual(t, harness.StatusPass, v.Status, "%s", v)
				if v.Check == harness.CheckDriver {
					verdict = &r.Verdicts[i]
				}
			}
			require.NotNil(t, verdict, "a driver's run gets a harness.driver verdict")
			assert.Equal(t, harness.StatusFail, verdict.Status)
			assert.Contains(t, verdict.Reason, tc.reason)
			assert.False(t, cert.Passed())
			require.Len(t, r.History.Leaks.Processes, 1)
			drivertest.RequireNothingLeft(t, r.History.Leaks.Processes[0].PID)
		})
	}
}
