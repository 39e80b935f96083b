package harness_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

// A contract file declares the retry policy the retry oracles judge.
func TestParseProfileReadsTheRetryPolicy(t *testing.T) {
	p, err := harness.ParseProfile([]byte(`default:
  max_attempts: 3
  backoff_base: 50ms
  backoff_multiplier: 3
  backoff_cap: 1s
  backoff_jitter: 0.5
  max_retry_after: 2s
  retry_budget: 0.2
`))
	require.NoError(t, err)
	c := p.For("inventory")
	assert.Equal(t, 3.0, c.BackoffMultiplier)
	assert.Equal(t, time.Second, c.BackoffCap)
	assert.Equal(t, 0.5, c.BackoffJitter)
	assert.Equal(t, 2*time.Second, c.MaxRetryAfter)
	assert.Equal(t, 0.2, c.RetryBudget)

	p, err = harness.ParseProfile([]byte(`{"default": {"backoff_jitter": 1, "backoff_multiplier": 1.5}}`))
	require.NoError(t, err)
	assert.Equal(t, 1.0, p.Default.BackoffJitter)
	assert.Equal(t, 1.5, p.Default.BackoffMultiplier)

	_, err = harness.ParseProfile([]byte(`{"default": {"backoff_jitter": "half"}}`))
	require.ErrorIs(t, err, harness.ErrInvalidProfile)
	assert.Contains(t, err.Error(), `default.backoff_jitter: "half" is not a number of 0 or more`)
}
