package harness_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/poolproof/poolproof/harness"
)

func TestReplicaNamesRoundTrip(t *testing.T) {
	assert.Equal(t, "inventory-0", harness.ReplicaName("inventory", 0))
	assert.Equal(t, "inventory-12", harness.ReplicaName("inventory", 12))
	for _, tc := range []struct {
		name    string
		service string
		i       int
		ok      bool
	}{
		{"inventory-2", "inventory", 2, true},
		{"my-service-10", "my-service", 10, true},
		{"inventory", "", 0, false},
		{"inventory-", "", 0, false},
		{"-1", "", 0, false},
		{"inventory-x", "", 0, false},
		{"inventory-01", "", 0, false},
	} {
		svc, i, ok := harness.ReplicaOf(tc.name)
		assert.Equal(t, tc.ok, ok, tc.name)
		assert.Equal(t, tc.service, svc, tc.name)
		assert.Equal(t, tc.i, i, tc.name)
	}
}

func TestHistoryListsTheReplicasItObservedInOrder(t *testing.T) {
	h := &harness.History{ServerAfterRun: map[string]harness.ServerTruth{
		"inventory": {}, "inventory-10": {}, "inventory-2": {}, "inventory-0": {}, "payment-0": {}, "notification": {},
	}}
	assert.Equal(t, []string{"inventory-0", "inventory-2", "inventory-10"}, h.Replicas("inventory"))
	assert.Equal(t, []string{"payment-0"}, h.Replicas("payment"))
	assert.Empty(t, h.Replicas("notification"))
}
