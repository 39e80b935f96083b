// Package testenv holds the rule the project's tests share for a tool or
// service this machine may lack (Docker, Chromium): a developer's run skips
// the test, and a run that declares the tool required (CI sets the
// POOLPROOF_REQUIRE_* variables) fails it instead.
package testenv

import (
	"os"
	"testing"
)

// Variables that make a missing tool a failure.
const (
	RequireDocker   = "POOLPROOF_REQUIRE_DOCKER"
	RequireChromium = "POOLPROOF_REQUIRE_CHROMIUM"
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
