package suites

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/poolproof/poolproof/harness"
)

func TestFamiliesOf(t *testing.T) {
	tests := []struct {
		name     string
		families []string
		want     []string
	}{
		{"empty catalog", nil, nil},
		{"harness order, not catalog order", []string{harness.FamilyRetry, harness.FamilyLeak, harness.FamilyRetry}, []string{harness.FamilyLeak, harness.FamilyRetry}},
		{"unknown family kept last", []string{"custom", harness.FamilyPool}, []string{harness.FamilyPool, "custom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var catalog []harness.Scenario
			for i, f := range tt.families {
				catalog = append(catalog, harness.Scenario{Name: string(rune('a' + i)), Family: f})
			}
			assert.Equal(t, tt.want, familiesOf(catalog))
		})
	}
}

func TestSpecTimeoutLeavesRoomForTheRun(t *testing.T) {
	s := harness.Scenario{Workload: harness.Workload{Duration: 2 * time.Second}}
	p := harness.DefaultProfile()
	got := specTimeout(s, p)
	c := p.For("inventory")
	assert.Greater(t, got, s.Workload.Duration+c.RequestTimeout+c.RecoveryTime)

	perAttempt := harness.Profile{Default: harness.Contract{AttemptTimeout: 20 * time.Second, MaxAttempts: 3}}
	assert.Greater(t, specTimeout(s, perAttempt), 4*60*time.Second, "room for every attempt of a call bounded per attempt")
}

func TestOptions(t *testing.T) {
	quick := config{}
	WithQuick()(&quick)
	assert.NotEmpty(t, quick.scenarios)

	last := config{}
	WithQuick()(&last)
	WithScenarios([]harness.Scenario{{Name: "x"}})(&last)
	assert.Len(t, last.scenarios, 1, "the last of WithQuick and WithScenarios wins")

	seeded := config{}
	WithSeed(42)(&seeded)
	assert.Equal(t, int64(42), seeded.seed)

	reset := config{}
	WithClientReset(func(context.Context) error { return nil })(&reset)
	assert.NotNil(t, reset.reset)
}
