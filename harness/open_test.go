package harness

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenEnvironment(t *testing.T) {
	t.Run("embedded by default", func(t *testing.T) {
		env, err := OpenEnvironment(context.Background(), "")
		require.NoError(t, err)
		t.Cleanup(func() { _ = env.Close() })
		assert.Equal(t, EnvEmbedded, env.Name())
	})
	t.Run("unknown name", func(t *testing.T) {
		_, err := OpenEnvironment(context.Background(), "mars")
		require.ErrorIs(t, err, ErrUnknownEnvironment)
		assert.Contains(t, err.Error(), `"mars": use one of embedded, docker, remote`)
	})
	t.Run("remote without its variables", func(t *testing.T) {
		t.Setenv("POOLPROOF_TOXIPROXY_URL", "")
		_, err := OpenEnvironment(context.Background(), EnvRemote)
		require.ErrorIs(t, err, ErrInvalidRemoteConfig)
		assert.Contains(t, err.Error(), "POOLPROOF_TOXIPROXY_URL")
	})
}
