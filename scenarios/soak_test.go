package scenarios_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/scenarios"
)

func TestSoakStretchesStandard(t *testing.T) {
	standard, soak := scenarios.Standard(), scenarios.Soak()
	require.Len(t, soak, len(standard))
	for i, s := range soak {
		std := standard[i]
		require.NoError(t, s.Validate(), s.Name)
		assert.Equal(t, std.Name, s.Name)
		assert.Equal(t, 4*std.Workload.Duration, s.Workload.Duration, s.Name)
		assert.Equal(t, std.Workload.ThinkTime, s.Workload.ThinkTime, "%s: the pacing is unchanged", s.Name)
		assert.Equal(t, std.Workload.Rate, s.Workload.Rate, s.Name)
		require.Len(t, s.Steps, len(std.Steps))
		for j := range s.Steps {
			assert.Equal(t, 4*std.Steps[j].At, s.Steps[j].At, "%s step %d", s.Name, j)
		}
	}
	assert.NotEqual(t, standard[0].Workload.Duration, soak[0].Workload.Duration, "Standard itself is not changed")
}
