package scenarios_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/brokenclients"
	"github.com/poolproof/poolproof/examples/retryingclient"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/scenarios"
)

// doOnly hides everything of a client but Do, as a wrapper around a
// RoundTripper or a library type does: the harness cannot ask it to drop
// its idle connections.
type doOnly struct{ c *http.Client }

func (d doOnly) Do(req *http.Request) (*http.Response, error) { return d.c.Do(req) }

// controlScenarios are the scenarios where correct clients were judged
// falsely before: pooling on HTTP/1.1, idle connections a client cannot be
// asked to close, transport replays, retries and Retry-After, the
// keep-alive race and a blackhole.
var controlScenarios = []string{
	scenarios.Baseline, scenarios.PoolExhaustion, scenarios.ConnectionResets, scenarios.Flaky5xx,
	scenarios.RetryAfter429, scenarios.Blackhole, scenarios.KeepAliveRace, scenarios.ProcessThenFail,
}

// Correct clients of three shapes, each held to the contract it declares,
// pass every applicable check on HTTP/1.1 and on HTTP/2: the reference
// client, a well-configured plain *http.Client that exposes only Do, and a
// correct retrying client built on net/http.
func TestCorrectClientsCertifyOnBothProtocols(t *testing.T) {
	testenv.SkipUnderRace(t)
	if testing.Short() {
		t.Skip("certifies three clients on two protocols (about two minutes)")
	}
	refProfile := reference.Profile()
	refProfile.HTTP2 = true
	plainProfile := brokenclients.PlainProfile()
	plainProfile.HTTP2 = true
	for _, tc := range []struct {
		name    string
		factory harness.ClientFactory
		profile harness.Profile
	}{
		{"reference", reference.Factory, refProfile},
		{"plain client exposing only Do", func(svc harness.Service) (harness.Client, error) {
			return doOnly{&http.Client{Transport: brokenclients.PlainTransport(svc), Timeout: 2 * time.Second}}, nil
		}, plainProfile},
		{"retrying client", retryingclient.Factory, retryingclient.Profile()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := scenarios.Select(controlScenarios...)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cert, err := harness.Certify(ctx, newEnv(t), tc.factory, tc.profile, list)
			require.NoError(t, err)
			require.Len(t, cert.Results, 2*len(list), "every scenario on HTTP/1.1 and on HTTP/2")
			for _, v := range cert.Failures() {
				t.Errorf("%s", v)
			}
			assert.True(t, cert.Passed())
			for _, v := range cert.NotApplicable() {
				t.Logf("not applicable: %s", v)
			}
		})
	}
}
