package env_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/scenarios"
)

// TestRemoteJudgesTheQuickCatalog runs the quick catalog
// against the reference client on a remote environment made of separately
// started servers: with admin URLs every verdict is judged (none is not
// applicable) and every fault applied; without, the checks that need server
// truth are not applicable and the HTTP-fault steps are refused.
func TestRemoteJudgesTheQuickCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quick catalog twice")
	}
	for _, tt := range []struct {
		name       string
		withAdmins bool
	}{{"with admin URLs", true}, {"without admin URLs", false}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			t.Cleanup(cancel)
			ca, err := fakeservers.NewCA()
			require.NoError(t, err)
			cfg := env.RemoteConfig{Upstreams: map[string]string{}, AdminURLs: map[string]string{}, ListenHost: "127.0.0.1"}
			for i, name := range fakeservers.Services {
				srv, err := fakeservers.Start(ctx, fakeservers.Config{Service: name, TLS: true, CA: ca, Seed: harness.DefaultSeed + int64(i)})
				require.NoError(t, err)
				t.Cleanup(func() { _ = srv.Close() })
				cfg.Upstreams[name] = srv.Addr()
				if tt.withAdmins {
					cfg.AdminURLs[name] = srv.AdminURL()
				}
			}
			toxi, err := env.StartToxiproxy(ctx, "127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { _ = toxi.Close() })
			cfg.ToxiproxyURL = toxi.URL()
			cfg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
			require.NoError(t, os.WriteFile(cfg.CAFile, ca.PEM(), 0o644))

			env, err := env.NewRemote(ctx, cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = env.Close() })

			begin := time.Now()
			cert, err := harness.Certify(ctx, env, reference.Factory, reference.Profile(), scenarios.Quick())
			require.NoError(t, err)
			t.Logf("quick catalog on remote (%s): %v", tt.name, time.Since(begin))
			if tt.withAdmins {
				// Every check is judged and every fault step applied. Whether
				// the reference passes each timing bound is the catalog's own
				// test (scenarios.TestReferenceCertifiesQuick); failures are
				// logged here, not asserted, so that this test is about the
				// environment only.
				for _, v := range cert.Failures() {
					t.Logf("failed (judged): %s", v)
				}
				assert.Empty(t, cert.NotApplicable(), "with admin URLs every check can be judged")
				for _, r := range cert.Results {
					require.NotNil(t, r.History, "scenario %s ran", r.Scenario)
					assert.Empty(t, r.Err, "scenario %s", r.Scenario)
					for _, s := range r.History.Steps {
						assert.Empty(t, s.Err, "scenario %s step %s", r.Scenario, s.Step.Label)
					}
				}
				return
			}
			// HTTP-fault steps cannot be applied to services without an
			// admin API; the history says so, step by step.
			failedSteps := 0
			for _, r := range cert.Results {
				require.NotNil(t, r.History, "scenario %s ran", r.Scenario)
				for _, s := range r.History.Steps {
					if s.Err != "" {
						failedSteps++
						assert.Contains(t, s.Err, "admin API", "scenario %s step %s", r.Scenario, s.Step.Label)
					}
				}
			}
			assert.Positive(t, failedSteps, "the quick catalog has HTTP-fault steps, refused without an admin API")
			judged := 0
			for _, r := range cert.Results {
				for _, v := range r.Verdicts {
					if v.Status == harness.StatusNotApplicable {
						continue
					}
					judged++
				}
			}
			assert.NotEmpty(t, cert.NotApplicable(), "checks needing server truth are not applicable")
			for _, v := range cert.NotApplicable() {
				assert.NotEqual(t, harness.StatusPass, v.Status)
			}
			assert.Positive(t, judged, "client-side checks are still judged")
		})
	}
}
