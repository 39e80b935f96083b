package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/drivertest"
)

func certify(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = dispatch(context.Background(), append([]string{"certify"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCertifyRejectsBadInputWithExitCode2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown client", []string{"-client", "nope"}, `-client "nope": not a client poolproof knows`},
		{"unknown scenario", []string{"-scenario", "nope"}, `-scenario "nope": no scenario or family of that name`},
		{"unknown profile", []string{"-profile", "huge"}, `-profile "huge": use quick, standard or soak`},
		{"unknown environment", []string{"-env", "mars"}, `-env "mars": use one of embedded, docker, remote`},
		{"malformed flag", []string{"-seed", "abc"}, `invalid value "abc" for flag -seed`},
		{"stray argument", []string{"now"}, `unexpected argument "now"`},
		{"driver and client", []string{"-driver", "python3 d.py", "-client", "plain"}, "-driver and -client both given: certify one client"},
		{"driver not found", []string{"-driver", "no-such-driver --flag"}, `-driver "no-such-driver --flag": no-such-driver: executable file not found in $PATH: give the command that runs your driver`},
		{"driver unbalanced quote", []string{"-driver", `python3 "my driver.py`}, `-driver "python3 \"my driver.py": unbalanced " quote`},
		{"driver empty", []string{"-driver", "  "}, `-driver "  ": no command`},
		{"contract missing", []string{"-contract", "/no/such/contract.json"}, "-contract: contract file /no/such/contract.json: open /no/such/contract.json: no such file or directory"},
		{"contract bad field", []string{"-contract", writeFile(t, "c.yaml", "services:\n  payment:\n    pool_wait: soon\n")}, `services.payment.pool_wait: "soon" is not a duration: write it like "250ms" or "2s"`},
		{"contract unknown field", []string{"-client", "plain", "-contract", writeFile(t, "c.json", `{"default": {"max_connections": 8}}`)}, "default.max_connections: unknown field: use max_conns, max_in_flight, pool_wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := certify(t, tc.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout, "nothing runs on bad input")
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, bytes.Count([]byte(stderr), []byte("\n")), "one line: %q", stderr)
		})
	}
}

func TestCertifyReferencePassesAndWritesTheReport(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := certify(t, "-profile", "quick", "-scenario", "baseline", "-seed", "7", "-report", dir)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stderr, "[1/1] baseline (leak, seed 7)", "progress names the scenario and seed")
	assert.Contains(t, stdout, "CERTIFIED: ")
	assert.Contains(t, stdout, "leak.goroutines")
	assert.NotContains(t, stdout, "FAIL")

	f, err := os.Open(filepath.Join(dir, "histories", "baseline.json.gz"))
	require.NoError(t, err)
	defer f.Close()
	h, err := harness.LoadHistory(f)
	require.NoError(t, err)
	assert.Equal(t, int64(7), h.Seed)
	assert.NotEmpty(t, h.Calls)

	for _, name := range []string{"report.html", "junit.xml", "summary.md"} {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		require.NoError(t, err, name)
		assert.Positive(t, st.Size(), name)
		assert.Contains(t, stdout, path, "the paths are printed")
	}
	summary, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	require.NoError(t, err)
	assert.Contains(t, string(summary), "reference client CERTIFIED")
	assert.Contains(t, string(summary), "| baseline | leak | passed |")
}

func TestCertifyBrokenClientFailsNamingTheCheck(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := certify(t, "-profile", "quick", "-scenario", "process-then-fail", "-client", "retries-unsafe-post", "-report", dir)
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "NOT CERTIFIED")
	junit, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	require.NoError(t, err, "a failed certification still writes its report")
	assert.Contains(t, string(junit), `<failure message="FAIL ledger.no_duplicate_charge scenario=process-then-fail seed=`)
	assert.Regexp(t, `process-then-fail\s+ledger.no_duplicate_charge\s+FAIL`, stdout)
	assert.Regexp(t, `was charged [2-9] times`, stdout)
}

func TestCertifyReportFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, defaultReportDir},
		{"named", []string{"-report", "out/r"}, "out/r"},
		{"dash disables", []string{"-report", "-"}, ""},
		{"empty disables", []string{"-report", ""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseCertifyFlags(tc.args, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, tc.want, f.reportDir)
		})
	}
}

func TestCertifyWithoutReportWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // the default folder would land here if "-" did not disable it
	code, stdout, stderr := certify(t, "-profile", "quick", "-scenario", "baseline", "-report", "-")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.NotContains(t, stdout, "report written")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestCertifyReportFolderThatCannotBeCreatedIsAUsageError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	code, stdout, stderr := certify(t, "-profile", "quick", "-scenario", "baseline", "-report", filepath.Join(file, "sub"))
	assert.Equal(t, 2, code)
	assert.Empty(t, stdout, "nothing runs when the report cannot be written")
	assert.Contains(t, stderr, "choose a folder you can write to")
}

// A gallery client is held to the contract it was built for, so only its
// bug fails: on a scenario that does not exercise the bug it certifies.
func TestCertifyGalleryClientPassesWhereItsBugDoesNotShow(t *testing.T) {
	code, stdout, stderr := certify(t, "-profile", "quick", "-scenario", "baseline", "-client", "retry-after-ignored", "-report", "-")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "CERTIFIED: ")
}

// A remote environment that is not there is the user's to fix: one line,
// exit code 2, nothing run.
func TestCertifyUnreachableRemoteEnvironment(t *testing.T) {
	t.Setenv("POOLPROOF_TOXIPROXY_URL", "http://127.0.0.1:1")
	t.Setenv("POOLPROOF_UPSTREAM_INVENTORY", "127.0.0.1:2")
	code, stdout, stderr := certify(t, "-env", "remote", "-report", "-")
	assert.Equal(t, 2, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "poolproof certify: -env remote: toxiproxy API unreachable")

	t.Setenv("POOLPROOF_TOXIPROXY_URL", "")
	code, _, stderr = certify(t, "-env", "remote", "-report", "-")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "POOLPROOF_TOXIPROXY_URL is not set")
}

// writeFile writes content to a file named name in a temporary folder.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"python3 drivers/python/requests_typical.py", []string{"python3", "drivers/python/requests_typical.py"}},
		{`  node  "my driver.js" --name 'a b'  `, []string{"node", "my driver.js", "--name", "a b"}},
		{`./d --x=\"y\" ''`, []string{"./d", `--x="y"`, ""}},
		{`'it\'s'`, nil},
	} {
		got, err := splitCommand(tc.line)
		if tc.want == nil {
			assert.Error(t, err, tc.line)
			continue
		}
		require.NoError(t, err, tc.line)
		assert.Equal(t, tc.want, got, tc.line)
	}
}

// A driver is certified like a built-in client: the same progress,
// scorecard, report and exit code; its goroutine check is not applicable,
// its process is judged instead, and nothing of it is left running.
func TestCertifyDriver(t *testing.T) {
	dir := t.TempDir()
	bin := drivertest.GoDriver(t)
	code, stdout, stderr := certify(t, "-driver", bin, "-contract", "../../drivers/go/contract.json", "-profile", "quick", "-scenario", "baseline", "-report", dir)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stderr, fmt.Sprintf("certifying the driver %q client, quick profile", bin))
	assert.Contains(t, stderr, "[1/1] baseline (leak, seed 20240601)")
	assert.Contains(t, stdout, "scorecard: driver go-net-http (net/http go")
	assert.Regexp(t, `baseline\s+leak.goroutines\s+n/a .* the client runs in a child process`, stdout)
	assert.Regexp(t, `baseline\s+leak.fds\s+pass .* the driver's process`, stdout)
	assert.Regexp(t, `baseline\s+harness.driver\s+pass .* kept to the protocol and exited when told`, stdout)
	assert.Contains(t, stdout, "CERTIFIED: ")

	f, err := os.Open(filepath.Join(dir, "histories", "baseline.json.gz"))
	require.NoError(t, err)
	defer f.Close()
	h, err := harness.LoadHistory(f)
	require.NoError(t, err)
	require.Len(t, h.Leaks.Processes, 1)
	assert.Equal(t, bin, h.Leaks.Processes[0].Command)
	assert.Equal(t, 8, h.Profile.For("payment").MaxConns, "held to its contract file")
	drivertest.RequireNothingLeft(t, h.Leaks.Processes[0].PID)
}

// -contract holds a built-in client to another contract than its own.
func TestCertifyBuiltInClientWithAContractFile(t *testing.T) {
	dir := t.TempDir()
	// Go's defaults keep no connection limit: on HTTP/1.1 the plain client
	// opens a connection per concurrent call, so the file declares room.
	contract := writeFile(t, "plain.yaml", "default:\n  max_conns: 64\n  request_timeout: 2s\n  max_attempts: 1\n  breaker_open_delay: 0s\nservices:\n  payment:\n    max_conns: 48\n")
	code, stdout, stderr := certify(t, "-client", "plain", "-contract", contract, "-profile", "quick", "-scenario", "baseline", "-report", dir)
	// Certified or not (with Go's two idle connections per host the plain
	// client churns on HTTP/1.1), it ran held to the file, not unusable.
	require.Contains(t, []int{0, 1}, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Regexp(t, `baseline\s+pool.bound\s+pass .* \(bound (48|64)\)`, stdout)
	assert.Contains(t, stderr, "certifying the plain client")

	f, err := os.Open(filepath.Join(dir, "histories", "baseline.json.gz"))
	require.NoError(t, err)
	defer f.Close()
	h, err := harness.LoadHistory(f)
	require.NoError(t, err)
	assert.Equal(t, 48, h.Profile.For("payment").MaxConns)
	assert.Equal(t, 64, h.Profile.For("inventory").MaxConns)
	assert.Equal(t, 1, h.Profile.For("payment").MaxAttempts, "a service's entry is completed from default")
}
