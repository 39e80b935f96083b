package report_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/brokenclients"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/scenarios"
)

// realCert is one real certification shared by the tests of this package:
// the gallery's retries-unsafe-post client (the reference client retrying
// POSTs that the server already processed) on the quick blackhole, which it
// passes, and process-then-fail, which it fails with a duplicate charge. Both
// inject faults, so the timelines have windows to shade. It is computed once
// because it takes a few seconds; tests only read it.
var realCert = sync.OnceValues(func() (*harness.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := env.NewEmbedded(ctx)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	picked, err := scenarios.Select("blackhole", "process-then-fail")
	if err != nil {
		return nil, err
	}
	quick := map[string]harness.Scenario{}
	for _, s := range scenarios.Quick() {
		quick[s.Name] = s
	}
	for i, s := range picked { // the quick versions: same faults, shorter
		if q, ok := quick[s.Name]; ok {
			picked[i] = q
		}
	}
	broken, err := brokenclients.Lookup("retries-unsafe-post")
	if err != nil {
		return nil, err
	}
	// Gallery clients are built on the default contract, so only their bug fails.
	return harness.Certify(ctx, e, broken.Factory, brokenclients.Profile(), picked, harness.WithSeed(7))
})

func certificate(t *testing.T) *harness.Certificate {
	t.Helper()
	cert, err := realCert()
	require.NoError(t, err)
	require.NotNil(t, cert)
	require.Len(t, cert.Results, 2)
	require.NotEmpty(t, cert.Failures(), "retries-unsafe-post must fail process-then-fail for these tests to see a failure")
	return cert
}
