package dashboards_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/dashboards"
	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/runmetrics"
)

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// exposedNames are the metric families the run's registry exposes once a
// run has fed every kind of metric.
func exposedNames(t *testing.T) []string {
	m := runmetrics.New()
	m.RunStarted("baseline", []string{fakeservers.Inventory})
	m.CallRecorded(harness.CallRecord{End: int64(time.Millisecond), Service: harness.ServiceInventory, Op: harness.OpGetItem, Class: harness.ClassReset})
	m.Sampled(harness.Sample{InFlight: 1, ServerConns: []int32{1}})
	m.StepDone(harness.StepRecord{Step: harness.Step{Action: harness.DisableProxy(fakeservers.Inventory)}, Outcome: harness.StepApplied})
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
	}
	return names
}

var (
	// Stripped before looking for metric names: label matchers, range
	// selectors, grouping clauses and strings.
	labelMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|"[^"]*"`)
	identifier    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords      = []string{"and", "or", "unless", "bool", "offset", "le", "inf", "nan"}
)

// metricNames are the metric names a PromQL expression reads: identifiers
// that are no function call and no keyword, a histogram's series suffixes
// dropped.
func metricNames(expr string) []string {
	var out []string
	for _, id := range identifier.FindAllString(labelMatchers.ReplaceAllString(expr, " "), -1) {
		if strings.HasSuffix(id, "(") || slices.Contains(keywords, strings.ToLower(id)) {
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			id = strings.TrimSuffix(id, suffix)
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNamesOfAnExpression(t *testing.T) {
	assert.Equal(t, []string{"a_seconds", "b_total"},
		metricNames(`histogram_quantile(0.99, sum by (service, le) (rate(a_seconds_bucket{x="y"}[5m]))) / on (service) b_total > bool 0`))
}

func TestDashboardGraphsOnlyMetricsThatExist(t *testing.T) {
	data, err := os.ReadFile("poolproof-run.json")
	require.NoError(t, err)
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(data, &d))
	assert.Equal(t, "poolproof-run", d.UID)

	known := append(exposedNames(t), dashboards.PoolMetricNames...)
	graphed := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			require.NotEmpty(t, p.Targets, "panel %q has a query", p.Title)
			for _, target := range p.Targets {
				names := metricNames(target.Expr)
				require.NotEmpty(t, names, "panel %q: %q reads no metric", p.Title, target.Expr)
				for _, n := range names {
					assert.Contains(t, known, n, "panel %q graphs %s, which neither the run nor the pool names expose", p.Title, n)
					graphed[n] = true
				}
			}
		}
	}
	walk(d.Panels)
	for _, n := range known {
		assert.True(t, graphed[n], "%s has no panel", n)
	}
}
