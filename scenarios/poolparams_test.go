package scenarios_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/brokenclients"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/pooledclient"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/scenarios"
)

// Short pool parameters that pool-idle-lifetime can judge: a reference
// client and a plain one configured with them keep them.
const (
	shortIdleTimeout = 300 * time.Millisecond
	shortLifetime    = 500 * time.Millisecond
)

// Clients that keep a short declared idle timeout and lifetime pass
// pool-idle-lifetime's checks, judged (not merely not applicable), on
// HTTP/1.1 and on HTTP/2: the checks do not fail correct pools.
func TestPoolParametersKeptCertify(t *testing.T) {
	testenv.SkipUnderRace(t)
	if testing.Short() {
		t.Skip("certifies two clients through pool-idle-lifetime on two protocols (about 20s)")
	}
	shorten := func(c pooledclient.Config) pooledclient.Config {
		c.IdleTimeout, c.MaxLifetime = shortIdleTimeout, shortLifetime
		return c
	}
	pooled := harness.Profile{HTTP2: true, Default: harness.DefaultContract, Services: map[string]harness.Contract{}}
	for _, c := range reference.Configs() {
		pooled.Services[c.Name] = reference.ContractOf(shorten(c))
	}
	plain := brokenclients.PlainProfile()
	plain.HTTP2 = true
	plain.Default.IdleTimeout = shortIdleTimeout
	for _, tc := range []struct {
		name    string
		factory harness.ClientFactory
		profile harness.Profile
		judged  []string // checks that must pass, not be left not applicable
	}{
		{"reference client with a short idle timeout and lifetime", func(svc harness.Service) (harness.Client, error) {
			cfg, err := pooledclient.DefaultConfig(svc.Name, svc.BaseURL, svc.CAs)
			if err != nil {
				return nil, err
			}
			cfg = shorten(cfg)
			cfg.HTTP2 = true
			return pooledclient.NewClient(cfg)
		}, pooled, []string{check.IDPoolLifetime, check.IDPoolIdleTimeout}},
		{"plain client with a short idle timeout", func(svc harness.Service) (harness.Client, error) {
			tr := brokenclients.PlainTransport(svc)
			tr.IdleConnTimeout = shortIdleTimeout
			return doOnly{&http.Client{Transport: tr, Timeout: 2 * time.Second}}, nil
		}, plain, []string{check.IDPoolIdleTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := scenarios.Select(scenarios.PoolIdleLifetime)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cert, err := harness.Certify(ctx, newEnv(t), tc.factory, tc.profile, list)
			require.NoError(t, err)
			require.Len(t, cert.Results, 2, "on HTTP/1.1 and on HTTP/2")
			for _, v := range cert.Failures() {
				t.Errorf("%s", v)
			}
			for _, r := range cert.Results {
				for _, v := range r.Verdicts {
					for _, id := range tc.judged {
						if v.Check == id {
							assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
							t.Logf("%s", v)
						}
					}
				}
			}
			assert.True(t, cert.Passed())
		})
	}
}
