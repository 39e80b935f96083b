package scenarios_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/scenarios"
)

// newDockerEnv starts a docker environment owned by the test. Without a
// daemon it skips, unless POOLPROOF_REQUIRE_DOCKER=1 says the machine must
// have one (CI), where it fails: the same rule as harness's own docker tests.
func newDockerEnv(t testing.TB) harness.Environment {
	t.Helper()
	if testing.Short() {
		t.Skip("docker environment: skipped in -short mode (builds images and starts containers)")
	}
	// The first start builds the binary and the images; later ones reuse them.
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DockerStartTimeout)
	defer cancel()
	e, err := env.NewDocker(ctx)
	if errors.Is(err, env.ErrDockerUnavailable) {
		testenv.Unavailable(t, testenv.RequireDocker, "Docker", "start the Docker daemon", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// The catalog runs unchanged on the docker environment: the reference client
// passes every check there too. Its wall time is logged next to the one
// TestReferenceCertifiesStandard logs for embedded in the same `make test`
// pass, so the two can be compared.
func TestReferenceCertifiesOnDocker(t *testing.T) {
	testenv.SkipUnderRace(t)
	requirePassed(t, certifyOn(t, newDockerEnv(t), scenarios.Standard(), 10*time.Minute))
}

// The gallery is caught on docker as it is on embedded: the checks judge
// from what the containers' servers saw, through the same admin API. No
// client is skipped: the whole gallery, a fresh set of containers per
// client, took about two and a half minutes here (the slow leakers,
// new-client-per-request and goroutine-per-call, ~30s and ~15s of it).
func TestBrokenClientsAreCaughtOnDocker(t *testing.T) {
	testenv.SkipUnderRace(t)
	if testing.Short() {
		t.Skip("runs the gallery through its scenarios on docker (about two and a half minutes)")
	}
	requireGalleryCaught(t, newDockerEnv, nil)
}
