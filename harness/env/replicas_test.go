package env

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// itemStatus calls one endpoint's item route and returns the status.
func itemStatus(t *testing.T, svc harness.Service) int {
	t.Helper()
	c, _ := svcClient(t, svc, false, 5*time.Second)
	resp, err := c.Get(svc.BaseURL + "/v1/items/SKU-1")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestReplicasEachHaveTheirProxyTruthAndFaults(t *testing.T) {
	e := newEmbedded(t, WithTLS(false), WithReplicas(fakeservers.Inventory, 3))
	ctx := context.Background()

	var names []string
	for _, s := range e.Services() {
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{fakeservers.Payment, fakeservers.Notification}, names, "a replicated service is called through what stands in front of its replicas")
	reps := e.Replicas(fakeservers.Inventory)
	require.Len(t, reps, 3)
	for i, r := range reps {
		assert.Equal(t, harness.ReplicaName(fakeservers.Inventory, i), r.Name)
		assert.Equal(t, 200, itemStatus(t, r))
	}
	assert.Empty(t, e.Replicas(fakeservers.Payment))

	for _, r := range reps {
		st := observe(t, e, r.Name)
		assert.Equal(t, fakeservers.Inventory, st.Service)
		assert.Len(t, st.Requests, 1, "%s saw its own request only", r.Name)
	}
	_, err := e.Observe(ctx, fakeservers.Inventory)
	require.ErrorIs(t, err, harness.ErrUnknownService)
	assert.Contains(t, err.Error(), "inventory-0", "the error names what can be observed")

	// One replica faulted alone, then every replica through the service's name.
	require.NoError(t, e.Faults().Apply(ctx, harness.SetHTTPFaults(reps[1].Name, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 503})))
	assert.Equal(t, []int{200, 503, 200}, []int{itemStatus(t, reps[0]), itemStatus(t, reps[1]), itemStatus(t, reps[2])})
	require.NoError(t, e.Faults().Apply(ctx, harness.SetHTTPFaults(fakeservers.Inventory, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 502})))
	assert.Equal(t, []int{502, 502, 502}, []int{itemStatus(t, reps[0]), itemStatus(t, reps[1]), itemStatus(t, reps[2])})
	require.NoError(t, e.Faults().Apply(ctx, harness.DisableProxy(fakeservers.Inventory)))
	for _, r := range reps {
		st, err := e.Driver().Proxy(ctx, r.Name)
		require.NoError(t, err)
		assert.False(t, st.Enabled, r.Name)
	}

	require.NoError(t, e.Reset(ctx, 7))
	for _, r := range reps {
		assert.Equal(t, 200, itemStatus(t, r), "%s: reset enables its proxy and clears its faults", r.Name)
		assert.Len(t, observe(t, e, r.Name).Requests, 1, "%s: reset forgot the requests before it", r.Name)
	}
}

func TestWithReplicasRefusesWhatCannotRun(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithReplicas("billing", 2), `WithReplicas("billing", 2)`},
		{WithReplicas(fakeservers.Inventory, 0), "want 1 to 16 replicas"},
		{WithReplicas(fakeservers.Inventory, MaxReplicas+1), "want 1 to 16 replicas"},
	} {
		_, err := NewEmbedded(context.Background(), tc.opt)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	_, err := NewDocker(context.Background(), WithReplicas(fakeservers.Inventory, 2))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithReplicas not supported here")
}
