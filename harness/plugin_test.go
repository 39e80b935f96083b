package harness_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

func TestProfileForDerivesPerCallBoundsFromPerAttemptOnes(t *testing.T) {
	const ms = time.Millisecond
	cases := []struct {
		name                  string
		declared              harness.Contract
		poolWait, requestTime time.Duration
	}{
		{"nothing declared: nothing bound", harness.Contract{}, 0, 0},
		{"per call only: as declared", harness.Contract{PoolWait: 100 * ms, RequestTimeout: time.Second}, 100 * ms, time.Second},
		{"per attempt only: attempts x per attempt", harness.Contract{AttemptPoolWait: 250 * ms, AttemptTimeout: time.Second, MaxAttempts: 3}, 750 * ms, 3 * time.Second},
		{"per attempt, attempts undeclared: one attempt", harness.Contract{AttemptPoolWait: 250 * ms, AttemptTimeout: time.Second}, 250 * ms, time.Second},
		{"both declared: the per-call one", harness.Contract{PoolWait: 300 * ms, AttemptPoolWait: 250 * ms, RequestTimeout: 2 * time.Second, AttemptTimeout: time.Second, MaxAttempts: 3}, 300 * ms, 2 * time.Second},
		{"one bound per attempt, the other per call", harness.Contract{AttemptPoolWait: 250 * ms, RequestTimeout: time.Second, MaxAttempts: 2}, 500 * ms, time.Second},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got := harness.Profile{Default: tt.declared}.For("inventory")
			assert.Equal(t, tt.poolWait, got.PoolWait)
			assert.Equal(t, tt.requestTime, got.RequestTimeout)
			assert.Equal(t, tt.declared.AttemptPoolWait, got.AttemptPoolWait, "the per-attempt values stay as declared")
			assert.Equal(t, tt.declared.AttemptTimeout, got.AttemptTimeout)
		})
	}
	assert.Equal(t, harness.DefaultContract, harness.DefaultProfile().For("payment"), "declaring nothing means what it did")
}

func TestContractPerAttemptBoundsSaveAsJSON(t *testing.T) {
	ct := harness.Contract{AttemptPoolWait: 250 * time.Millisecond, AttemptTimeout: time.Second}
	raw, err := json.Marshal(ct)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"attempt_pool_wait":250000000`)
	assert.Contains(t, string(raw), `"attempt_timeout":1000000000`)
	var back harness.Contract
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, ct, back)

	raw, err = json.Marshal(harness.DefaultContract)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "attempt_", "a contract without per-attempt bounds saves as before")
}
