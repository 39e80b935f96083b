package scenarios_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/scenarios"
)

// The built-in catalog is itself a scenario file: each list marshals to
// the file form and parses back to an equal value, checks and their bounds
// included, as JSON and as the same document written in YAML.
func TestCatalogRoundTripsThroughScenarioFiles(t *testing.T) {
	for name, list := range map[string][]harness.Scenario{
		"standard":    scenarios.Standard(),
		"quick":       scenarios.Quick(),
		"soak":        scenarios.Soak(),
		"proxy":       scenarios.Proxy(scenarios.ProxyOptions{}),
		"proxy-quick": scenarios.ProxyQuick(scenarios.ProxyOptions{}),
		"proxy-soak":  scenarios.ProxySoak(scenarios.ProxyOptions{MaxUpstreamConns: 4}),
	} {
		t.Run(name, func(t *testing.T) {
			require.NotEmpty(t, list)
			data, err := harness.MarshalScenarios(list)
			require.NoError(t, err)
			require.NotContains(t, string(data), `"duration": 4000000000`, "durations are written with their unit")

			back, err := harness.ParseScenarios(data)
			require.NoError(t, err)
			require.Equal(t, list, back)

			var doc any
			require.NoError(t, yaml.Unmarshal(data, &doc))
			asYAML, err := yaml.Marshal(doc)
			require.NoError(t, err)
			back, err = harness.ParseScenarios(asYAML)
			require.NoError(t, err)
			require.Equal(t, list, back)
		})
	}
}
