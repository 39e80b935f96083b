package scenarios_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/scenarios"
)

func TestProxyCatalogIsValidAndCoversEveryProxyCheck(t *testing.T) {
	o := scenarios.ProxyOptions{FailTimeout: 4 * time.Second, MaxUpstreamConns: 6}
	used := map[string]bool{}
	for _, list := range [][]harness.Scenario{scenarios.Proxy(o), scenarios.ProxyQuick(o), scenarios.ProxySoak(o)} {
		require.NotEmpty(t, list)
		for _, s := range list {
			require.NoError(t, s.Validate())
			assert.NotContains(t, scenarios.Names(), s.Name, "a proxy scenario's name is not a client scenario's: -scenario picks by name")
			assert.Equal(t, harness.ProtocolHTTP1, harness.ForProtocols([]harness.Scenario{s}, harness.Profile{HTTP2: true})[0].Protocol)
			for _, id := range s.CheckIDs() {
				used[id] = true
			}
			b, err := json.Marshal(s)
			require.NoError(t, err)
			var back harness.Scenario
			require.NoError(t, json.Unmarshal(b, &back), "%s saves and loads as data", s.Name)
			assert.Equal(t, s.CheckIDs(), back.CheckIDs())
		}
	}
	for _, d := range check.ProxyDocs() {
		assert.True(t, used[d.ID], "no proxy scenario judges %s", d.ID)
	}
	assert.Equal(t, scenarios.ProxyNames(), names(scenarios.Proxy(o)))
}

// The failover scenarios hold the proxy to the fail timeout it promises,
// and leave the run long enough to see the replica come back.
func TestProxyFailoverScenariosWaitForTheFailTimeout(t *testing.T) {
	for _, ft := range []time.Duration{time.Second, scenarios.DefaultFailTimeout} {
		for _, s := range scenarios.Proxy(scenarios.ProxyOptions{FailTimeout: ft}) {
			i := slices.IndexFunc(s.Checks, func(c harness.Check) bool { return c.ID() == check.IDProxyFailover })
			if i < 0 {
				continue
			}
			f := s.Checks[i].(check.Failover)
			assert.Equal(t, ft+time.Second, f.ReturnWithin, s.Name)
			last := s.Steps[len(s.Steps)-1].At
			assert.GreaterOrEqual(t, s.Workload.Duration-last, f.ReturnWithin+time.Second, "%s: room to see %s return", s.Name, f.Replica)
		}
	}
	var bound check.UpstreamBound
	for _, c := range scenarios.Proxy(scenarios.ProxyOptions{MaxUpstreamConns: 6})[1].Checks {
		if b, ok := c.(check.UpstreamBound); ok {
			bound = b
		}
	}
	assert.Equal(t, 6, bound.MaxConns, "the promised bound reaches the check")
}
