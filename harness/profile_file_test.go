package harness_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
)

func TestParseProfileReadsJSONAndYAMLAlike(t *testing.T) {
	want := harness.Profile{
		Default: harness.Contract{MaxConns: 8, PoolWait: 250 * time.Millisecond, RequestTimeout: 2 * time.Second, MaxAttempts: 1, RecoveryTime: 3 * time.Second},
		Services: map[string]harness.Contract{
			// Fields the entry leaves out come from default.
			"payment": {MaxConns: 4, PoolWait: 250 * time.Millisecond, RequestTimeout: 2 * time.Second, MaxAttempts: 1, RecoveryTime: 3 * time.Second, BreakerOpenDelay: time.Second},
		},
	}
	for name, doc := range map[string]string{
		"json": `{
	"default": {"max_conns": 8, "pool_wait": "250ms", "request_timeout": "2s", "max_attempts": 1, "recovery_time": "3s"},
	"services": {"payment": {"max_conns": 4, "breaker_open_delay": "1s"}}
}`,
		"json with nanoseconds, as Contract's JSON writes them": `{"default": {"max_conns": 8, "pool_wait": 250000000, "request_timeout": 2000000000, "max_attempts": 1, "recovery_time": 3e9},
			"services": {"payment": {"max_conns": 4, "breaker_open_delay": "1s"}}}`,
		"yaml": `
# what our client promises
default:
  max_conns: 8
  pool_wait: 250ms
  request_timeout: 2s
  max_attempts: 1
  recovery_time: 3s
services:
  payment:
    max_conns: 4
    breaker_open_delay: 1s
`,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := harness.ParseProfile([]byte(doc))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestParseProfileReadsHTTP2(t *testing.T) {
	got, err := harness.ParseProfile([]byte("http2: true\ndefault:\n  max_conns: 4\n"))
	require.NoError(t, err)
	assert.Equal(t, harness.Profile{HTTP2: true, Default: harness.Contract{MaxConns: 4}}, got)
}

func TestParseProfileNamesTheBadField(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", `{"default": {"max_con": 8}}`, "default.max_con: unknown field: use max_conns, max_in_flight, pool_wait, request_timeout, attempt_pool_wait, attempt_timeout, max_attempts, backoff_base, backoff_multiplier, backoff_cap, backoff_jitter, max_retry_after, retry_budget, breaker_open_delay, recovery_time, half_open_probes, max_conn_lifetime, idle_timeout, connect_timeout"},
		{"unknown top-level field", `{"defaults": {}}`, "defaults: unknown field: use http2, default and services"},
		{"http2 not a boolean", `{"http2": "yes"}`, "http2: \"yes\" is not true or false"},
		{"unknown service", "services:\n  paymnt:\n    max_conns: 2\n", "services.paymnt: unknown service: use payment, inventory, notification"},
		{"bad duration", "services:\n  payment:\n    pool_wait: 2x\n", `services.payment.pool_wait: "2x" is not a duration: write it like "250ms" or "2s"`},
		{"negative duration", `{"default": {"request_timeout": "-1s"}}`, `default.request_timeout: "-1s" is not a duration`},
		{"duration without unit", "default:\n  pool_wait: 250\n", `default.pool_wait: 250 is 250ns: write durations with their unit, like "250ms"`},
		{"count with a fraction", "default:\n  max_conns: 2.5\n", "default.max_conns: 2.5 is not a whole number"},
		{"count as text", `{"default": {"max_attempts": "3"}}`, "default.max_attempts: 3 is not a whole number"},
		{"negative count", `{"default": {"max_conns": -1}}`, "default.max_conns: -1 is negative"},
		{"contract not an object", `{"default": 8}`, "default: not an object of named fields"},
		{"empty file", "", "the file: empty"},
		{"a list", "- 1\n", "the file: not an object of named fields"},
		{"broken json", `{"default": {`, "not valid JSON"},
		{"two documents of json", `{"default": {}} {}`, "more after the closing brace"},
		{"broken yaml", "default: [\n", "neither JSON nor valid YAML"},
		{"duplicate yaml key", "default: {}\ndefault: {}\n", `mapping key "default" already defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := harness.ParseProfile([]byte(tc.doc))
			require.ErrorIs(t, err, harness.ErrInvalidProfile)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadProfileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "contract.yaml")
	require.NoError(t, os.WriteFile(path, []byte("default:\n  max_conns: x\n"), 0o644))
	_, err := harness.LoadProfile(path)
	require.Error(t, err)
	assert.Equal(t, "contract file "+path+": invalid contract: default.max_conns: x is not a whole number: write a count like 8", err.Error())

	_, err = harness.LoadProfile(filepath.Join(t.TempDir(), "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// docs/contract-file.md has a row for every Contract field a file may
// hold, and none for a field that does not exist.
func TestContractFileDocListsEveryField(t *testing.T) {
	doc, err := os.ReadFile("../docs/contract-file.md")
	require.NoError(t, err)
	rows := regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\|").FindAllStringSubmatch(string(doc), -1)
	var documented []string
	for _, r := range rows {
		documented = append(documented, r[1])
	}
	var fields []string
	ct := reflect.TypeOf(harness.Contract{})
	for i := range ct.NumField() {
		if name, _, _ := strings.Cut(ct.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			fields = append(fields, name)
		}
	}
	assert.ElementsMatch(t, fields, documented)
}
