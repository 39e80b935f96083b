package scenarios_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/scenarios"
)

// newEnv starts an embedded environment owned by the test.
func newEnv(t testing.TB) *env.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := env.NewEmbedded(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// certify runs the catalog against the reference client and logs a
// scorecard line per scenario.
func certify(t *testing.T, list []harness.Scenario) *harness.Certificate {
	t.Helper()
	return certifyOn(t, newEnv(t), list, 5*time.Minute)
}

// certifyOn certifies the reference client on env within limit and logs
// every verdict and the wall time.
func certifyOn(t *testing.T, env harness.Environment, list []harness.Scenario, limit time.Duration) *harness.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	cert, err := harness.Certify(ctx, env, reference.Factory, reference.Profile(), list)
	require.NoError(t, err)
	for _, r := range cert.Results {
		var b strings.Builder
		for _, v := range r.Verdicts {
			fmt.Fprintf(&b, "\n    %s", v)
		}
		t.Logf("%-24s %6.2fs calls=%d%s", r.Scenario, r.Elapsed.Seconds(), len(r.History.Calls), b.String())
	}
	t.Logf("certification on %s: %d scenarios in %v", env.Name(), len(cert.Results), cert.Elapsed.Round(time.Millisecond))
	return cert
}

func requirePassed(t *testing.T, cert *harness.Certificate) {
	t.Helper()
	var lines []string
	for _, v := range cert.Failures() {
		lines = append(lines, v.String())
	}
	for _, v := range cert.NotApplicable() {
		lines = append(lines, v.String())
	}
	require.True(t, cert.Passed(), "the reference client must pass every scenario:\n%s", strings.Join(lines, "\n"))
	var unjudged []harness.Verdict
	for _, v := range cert.NotApplicable() {
		if !judgedElsewhere[strings.TrimSuffix(v.Scenario, harness.HTTP2RunSuffix)+" "+v.Check] {
			unjudged = append(unjudged, v)
		}
	}
	require.Empty(t, unjudged, "on the embedded environment every check can be judged")
}

// judgedElsewhere are the verdicts the catalog cannot give the reference
// client: its declared connection lifetime (2m) and idle timeout (60s), as a
// production pool sets them, outlast every scenario (pool-idle-lifetime
// lasts 2.2s). TestPoolParametersKeptCertify holds the same client with
// short settings to both.
var judgedElsewhere = map[string]bool{
	scenarios.PoolIdleLifetime + " " + check.IDPoolLifetime:    true,
	scenarios.PoolIdleLifetime + " " + check.IDPoolIdleTimeout: true,
}

func TestReferenceCertifiesQuick(t *testing.T) {
	testenv.SkipUnderRace(t)
	requirePassed(t, certify(t, scenarios.Quick()))
}

func TestReferenceCertifiesStandard(t *testing.T) {
	testenv.SkipUnderRace(t)
	if testing.Short() {
		t.Skip("the Standard certification takes about a minute")
	}
	requirePassed(t, certify(t, scenarios.Standard()))
}
