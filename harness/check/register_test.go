package check

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

func TestEveryDocumentedCheckIsRegisteredInDocOrder(t *testing.T) {
	all := All()
	require.Len(t, all, len(Docs()))
	for i, d := range Docs() {
		assert.Equal(t, d.ID, all[i].ID(), "All and Docs list the checks in one order")
		assert.Contains(t, harness.RegisteredChecks(), d.ID)
	}
}

func TestChecksRoundTripThroughJSONWithTheirBounds(t *testing.T) {
	in := harness.Checks{
		PoolBound{MaxConns: 8},
		PoolExhaustion{Service: "inventory", Latency: 400 * time.Millisecond},
		RetryAfter{RetryAfter: time.Second},
		GoroutineLeak{},
	}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.Contains(t, string(b), `{"id":"pool.bound","max_conns":8}`)
	var out harness.Checks
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in, out)
}

func TestLoadingChecksRefusesUnknownIDsAndFields(t *testing.T) {
	var out harness.Checks
	err := json.Unmarshal([]byte(`[{"id":"pool.bounds"}]`), &out)
	require.ErrorIs(t, err, harness.ErrUnknownCheck)
	assert.Contains(t, err.Error(), `"pool.bounds": use one of`)

	err = json.Unmarshal([]byte(`[{"id":"pool.bound","max_conn":8}]`), &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `checks[0] (pool.bound)`)
	assert.Contains(t, err.Error(), `max_conn`)

	err = json.Unmarshal([]byte(`[{"max_conns":8}]`), &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"id" is missing`)
}

// No check panics on a history that holds next to nothing (a malformed or
// truncated file): each says it cannot judge, or judges what is there.
func TestNoCheckPanicsOnAnEmptyHistory(t *testing.T) {
	for _, h := range []*harness.History{
		{},
		{Services: []string{"inventory", "payment"}, Calls: []harness.CallRecord{{Seq: 1, Service: harness.ServiceInventory, Op: harness.OpGetItem, End: 5}}},
	} {
		for _, v := range harness.Judge(h, All()...) {
			assert.NotContains(t, v.Reason, "panicked", v.Check)
		}
	}
}
