package pooledclient

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func payment(t *testing.T) Config {
	t.Helper()
	c, err := DefaultConfig(Payment, "http://127.0.0.1:1", nil)
	require.NoError(t, err)
	return c
}

func TestDefaultsAreValidAndShapedByRole(t *testing.T) {
	cfgs := DefaultConfigs()
	require.Len(t, cfgs, 3)
	byName := map[string]Config{}
	for _, c := range cfgs {
		c.BaseURL = "http://127.0.0.1:1"
		require.NoError(t, c.Validate(), c.Name)
		byName[c.Name] = c
	}
	p, inv, n := byName[Payment], byName[Inventory], byName[Notification]
	assert.Less(t, p.MaxConnsPerHost, inv.MaxConnsPerHost, "payment runs few connections, inventory many")
	assert.Greater(t, p.ResponseHeaderTimeout, inv.ResponseHeaderTimeout, "payment reads patiently")
	assert.Less(t, n.PoolWait, inv.PoolWait, "notification drops rather than queues")
	assert.Less(t, n.RequestTimeout, p.RequestTimeout)
}

func TestValidateNamesTheField(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"min above max", func(c *Config) { c.MinConns = 8 }, "pooledclient: payment: MinConns (8) above MaxConnsPerHost (4)"},
		{"negative max idle", func(c *Config) { c.MaxIdleConns = -1 }, "pooledclient: payment: MaxIdleConns (-1) is negative"},
		{"zero max conns", func(c *Config) { c.MaxConnsPerHost = 0; c.MinConns = 0 }, "MaxConnsPerHost (0) must be positive"},
		{"negative pool wait", func(c *Config) { c.PoolWait = -time.Second }, "PoolWait (-1s) is negative"},
		{"negative lifetime", func(c *Config) { c.MaxLifetime = -time.Second }, "MaxLifetime (-1s) is negative"},
		{"min above idle", func(c *Config) { c.MaxIdleConns = 1 }, "MinConns (2) above MaxIdleConns (1)"},
		{"no name", func(c *Config) { c.Name = "" }, "Name is empty"},
		{"bad base url", func(c *Config) { c.BaseURL = "ftp://x" }, `BaseURL "ftp://x"`},
		{"warm without url", func(c *Config) { c.BaseURL = "" }, "MinConns (2) needs BaseURL"},
		{"backoff inverted", func(c *Config) { c.Retry.BaseBackoff = time.Hour }, "Retry.BaseBackoff (1h0m0s) above Retry.MaxBackoff"},
		{"jitter out of range", func(c *Config) { c.Retry.Jitter = 2 }, "Retry.Jitter (2)"},
		{"rate out of range", func(c *Config) { c.Breaker.FailureRate = 1.5 }, "Breaker.FailureRate (1.5)"},
		{"rate without window", func(c *Config) { c.Breaker.Window = 0 }, "needs a positive Breaker.Window"},
		{"breaker without rule", func(c *Config) { c.Breaker.ConsecutiveFailures = 0; c.Breaker.FailureRate = 0 }, "neither ConsecutiveFailures nor FailureRate"},
		{"negative probes", func(c *Config) { c.Breaker.HalfOpenProbes = -1 }, "Breaker.HalfOpenProbes (-1) is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := payment(t)
			tt.mutate(&c)
			err := c.Validate()
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)

			_, err = NewPool([]Config{c})
			require.ErrorIs(t, err, ErrInvalidConfig, "NewPool refuses it too")
			_, err = NewClient(c)
			require.ErrorIs(t, err, ErrInvalidConfig, "NewClient refuses it too")
		})
	}
}

func TestPoolRegistry(t *testing.T) {
	cfgs := DefaultConfigs()
	for i := range cfgs {
		cfgs[i].BaseURL = "http://127.0.0.1:1"
	}
	p, err := NewPool(cfgs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	assert.Equal(t, []string{Inventory, Notification, Payment}, p.Services())
	for _, name := range []string{Payment, Inventory, Notification} {
		c, err := p.Client(name)
		require.NoError(t, err)
		assert.Equal(t, name, c.Name())
	}
	_, err = p.Client("shipping")
	require.ErrorIs(t, err, ErrUnknownService)
	assert.Contains(t, err.Error(), `"shipping"`)
	assert.Contains(t, err.Error(), "inventory, notification, payment")

	_, err = NewPool(append(cfgs, cfgs[0]))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "payment: configured twice")

	_, err = DefaultConfig("shipping", "", nil)
	require.ErrorIs(t, err, ErrUnknownService)
}
