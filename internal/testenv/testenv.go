// Package testenv holds the rule the project's tests share for a tool or
// service this machine may lack (Docker, Chromium, nginx, HAProxy): a
// developer's run skips the test, and a run that declares the tool
// required (CI sets the POOLPROOF_REQUIRE_* variables) fails it instead.
package testenv

import (
	"os"
	"testing"
	"time"

	"github.com/poolproof/poolproof/internal/sbin"
)

// Variables that make a missing tool a failure.
const (
	RequireDocker   = "POOLPROOF_REQUIRE_DOCKER"
	RequireChromium = "POOLPROOF_REQUIRE_CHROMIUM"
	// RequireProxies makes a missing nginx or haproxy binary a failure.
	RequireProxies = "POOLPROOF_REQUIRE_PROXIES"
)

// Unavailable ends t because what is unavailable (err says why): it fails
// when the variable require is set to a non-empty value, and skips
// otherwise. hint says how to get it.
func Unavailable(t testing.TB, require, what, hint string, err error) {
	t.Helper()
	if os.Getenv(require) != "" {
		t.Fatalf("%s=%s but %s is unavailable: %v (%s)", require, os.Getenv(require), what, err, hint)
	}
	t.Skipf("%s is unavailable: %v (%s; set %s=1 to make this a failure)", what, err, hint, require)
}

// ProxyBinary is the path of the reverse proxy named kind ("nginx",
// "haproxy"), on PATH or in /usr/sbin, where Debian's packages put it; when
// it is missing, t skips or, with RequireProxies set, fails.
func ProxyBinary(t testing.TB, kind string) string {
	t.Helper()
	p, err := sbin.LookPath(kind)
	if err != nil {
		Unavailable(t, RequireProxies, kind, "Debian: apt-get install "+kind, err)
	}
	return p
}

// SkipUnderRace skips a test whose verdicts are timing and throughput
// measurements. The race detector slows every goroutine five to twenty
// times and unevenly, which changes what such a test measures (how many
// calls a client makes, how long a retry gap or a queue wait is), not
// whether the code is correct. `make test` runs these tests in a second
// pass without -race; the code they exercise is covered by the race
// detector in its own packages.
func SkipUnderRace(t testing.TB) {
	t.Helper()
	if Race {
		t.Skip("timing is judged without the race detector: make test runs this test in its race-free pass")
	}
}

// DockerStartTimeout bounds a test's start of the docker environment. The
// first start in a process builds the static poolproof binary (a cold
// build cache compiles the docker client stack too) and the images; on a
// loaded 2-core machine, with other test binaries building and running
// beside it, that took over 3 minutes.
const DockerStartTimeout = 10 * time.Minute
