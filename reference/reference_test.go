package reference_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
	"github.com/poolproof/poolproof/reference"
)

// TestFactoriesBuildOneClient: Factory is the configured client, PoolFactory
// the same client with only its pool bounds changed.
func TestFactoriesBuildOneClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	svc := harness.Service{Name: pooledclient.Inventory, BaseURL: srv.URL}
	want, err := pooledclient.DefaultConfig(svc.Name, svc.BaseURL, nil)
	require.NoError(t, err)

	build := func(t *testing.T, f harness.ClientFactory) pooledclient.Config {
		t.Helper()
		cl, err := f(svc)
		require.NoError(t, err)
		pc, ok := cl.(*pooledclient.Client)
		require.True(t, ok, "the reference client is a *pooledclient.Client, got %T", cl)
		t.Cleanup(func() { _ = pc.Close() })
		return pc.Config()
	}

	t.Run("Factory keeps the configured pool", func(t *testing.T) {
		got := build(t, reference.Factory)
		assert.Equal(t, want.MaxConnsPerHost, got.MaxConnsPerHost)
		assert.Equal(t, want.MaxIdleConns, got.MaxIdleConns)
		assert.Equal(t, want.MinConns, got.MinConns)
	})
	for _, pool := range []int{1, 7, 64} {
		t.Run(fmt.Sprintf("PoolFactory(%d) sets every pool bound", pool), func(t *testing.T) {
			got := build(t, reference.PoolFactory(pool))
			assert.Equal(t, pool, got.MaxConnsPerHost)
			assert.Equal(t, pool, got.MaxIdleConns)
			assert.Equal(t, pool, got.MinConns)
			assert.Equal(t, want.RequestTimeout, got.RequestTimeout, "timeouts stay as configured")
			assert.Equal(t, want.Retry, got.Retry, "retries stay as configured")
			assert.Equal(t, want.Breaker, got.Breaker, "the breaker stays as configured")
		})
	}
	t.Run("PoolFactory refuses an empty pool", func(t *testing.T) {
		_, err := reference.PoolFactory(0)(svc)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "at least 1 connection")
	})
}
