package env

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenEnvironment(t *testing.T) {
	t.Run("embedded by default", func(t *testing.T) {
		env, err := Open(context.Background(), "")
		require.NoError(t, err)
		t.Cleanup(func() { _ = env.Close() })
		assert.Equal(t, NameEmbedded, env.Name())
	})
	t.Run("unknown name", func(t *testing.T) {
		_, err := Open(context.Background(), "mars")
		require.ErrorIs(t, err, ErrUnknown)
		assert.Contains(t, err.Error(), `"mars": use one of embedded, docker, remote`)
	})
	t.Run("remote without its variables", func(t *testing.T) {
		t.Setenv("POOLPROOF_TOXIPROXY_URL", "")
		_, err := Open(context.Background(), NameRemote)
		require.ErrorIs(t, err, ErrInvalidRemoteConfig)
		assert.Contains(t, err.Error(), "POOLPROOF_TOXIPROXY_URL")
	})
}
