package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validScenarioYAML is a scenario file every malformed case below breaks
// in one place.
const validScenarioYAML = `scenarios:
  - name: my-latency
    family: timeout
    proves: the client bounds a call to a slow inventory
    workload: {duration: 4s, workers: 2, mix: {inventory: 1}}
    steps:
      - at: 1s
        label: slow inventory
        action:
          kind: add_toxic
          service: inventory
          toxic: {type: latency, stream: downstream, attributes: {latency: 300}}
      - at: 2s
        label: inventory answers 503
        action:
          kind: set_http_faults
          service: inventory
          http_faults: [{kind: status, status: 503, probability: 0.5}]
    checks:
      - id: timeout.no_hang
      - id: pool.bound
        max_conns: 4
`

func TestCertifyRefusesMalformedScenarioFiles(t *testing.T) {
	// Each case breaks validScenarioYAML once; the error names the field.
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"wrong type", "workers: 2", "workers: two", `scenarios[0].workload.workers: "two" is not a whole number`},
		{"unknown toxic", "type: latency", "type: lag", `scenarios[0].steps[0].action.toxic.type: "lag" is not a toxic: use one of bandwidth, latency`},
		{"unknown action kind", "kind: add_toxic", "kind: restart", `scenarios[0].steps[0].action.kind: "restart" is not an action: use one of add_toxic`},
		{"negative duration", "at: 2s", "at: -2s", `scenarios[0].steps[1].at: "-2s" is not a duration`},
		{"step after the workload", "at: 2s", "at: 5s", `scenarios[0].steps[1].at: 5s is not before the workload's 4s duration: put the step inside it`},
		{"unknown check id", "id: pool.bound", "id: pool.bounded", `scenarios[0].checks[1].id: "pool.bounded" is not a check: use one of`},
		{"unknown check field", "max_conns: 4", "max_connections: 4", `scenarios[0].checks[1].max_connections: unknown field: use max_conns, max_in_flight, close_lag, replace_window`},
		{"missing required field", "    proves: the client bounds a call to a slow inventory\n", "", `scenarios[0].proves: missing: this field is required`},
		{"bad family", "family: timeout", "family: vibes", `scenarios[0].family: "vibes": use one of leak, pool, timeout`},
		{"bad fake-server fault", "status: 503", "status: 418", `scenarios[0].steps[1].action.http_faults[0].status: 418 is not one of 429, 500, 502, 503, 504`},
		{"field of another action kind", "service: inventory\n          toxic:", "service: inventory\n          toxic_name: x\n          toxic:", `scenarios[0].steps[0].action.toxic_name: only for kind remove_toxic`},
		{"not a document", validScenarioYAML, "scenarios: [", "the file: neither JSON nor valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, validScenarioYAML, tc.old)
			path := writeFile(t, "s.yaml", strings.Replace(validScenarioYAML, tc.old, tc.new, 1))
			code, stdout, stderr := certify(t, "-profile", "none", "-scenarios", path, "-report", "-")
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout, "nothing runs on a bad file")
			assert.NotContains(t, stderr, "certifying", "nothing runs on a bad file")
			assert.Contains(t, stderr, "poolproof certify: -scenarios: scenario file "+path+": ")
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, bytes.Count([]byte(stderr), []byte("\n")), "one line: %q", stderr)
		})
	}
}

func TestCertifyScenarioFileFlagErrors(t *testing.T) {
	good := writeFile(t, "good.yaml", validScenarioYAML)
	taken := writeFile(t, "taken.yaml", strings.Replace(validScenarioYAML, "name: my-latency", "name: baseline", 1))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"none without files", []string{"-profile", "none"}, "-profile none runs only the scenarios of -scenarios files: give one"},
		{"missing file", []string{"-scenarios", "/no/such.yaml"}, "-scenarios: scenario file /no/such.yaml: open /no/such.yaml: no such file or directory"},
		{"name of a built-in scenario", []string{"-profile", "quick", "-scenarios", taken}, `scenario "baseline": the name is taken by a built-in scenario or an earlier file: rename it, or pass -profile none`},
		{"same file twice", []string{"-profile", "none", "-scenarios", good + "," + good}, `scenario "my-latency": the name is taken`},
		{"filter matches nothing", []string{"-profile", "none", "-scenarios", good, "-scenario", "baseline"}, `-scenario "baseline": no scenario or family of that name in the -scenarios files; scenarios: my-latency`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := certify(t, append(tc.args, "-report", "-")...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, bytes.Count([]byte(stderr), []byte("\n")), "one line: %q", stderr)
		})
	}
}

// A hand-written file with one of each kind of nemesis action and
// fake-server fault runs on the embedded environment, alone.
func TestCertifyRunsAHandWrittenScenarioFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3s scenario")
	}
	code, stdout, stderr := certify(t, "-profile", "none", "-scenarios", "../../examples/scenarios/every-fault.yaml", "-report", "-")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stderr, "[1/1] every-fault (recovery, seed 42)")
	for _, label := range []string{"100ms latency on inventory", "latency removed", "payment fails a few calls every way a server can",
		"payment healthy again", "notification restarts", "notification back", "inventory closes idle connections after 100ms"} {
		assert.Contains(t, stderr, "fault: "+label, "every step ran")
	}
	for _, id := range []string{"leak.goroutines", "timeout.no_hang", "pool.bound", "timeout.request_bound"} {
		assert.Contains(t, stdout, "every-fault  "+id, "every check judged")
	}
	assert.Contains(t, stdout, "CERTIFIED: 4 checks passed")
}
