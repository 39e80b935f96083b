package brokenclients

import "github.com/poolproof/poolproof/harness"

// newRetrySleepIgnoresContext is the gallery's retry loop sleeping out its
// backoff, and the server's Retry-After, with time.Sleep: a caller whose
// deadline passes, or who cancels, during the sleep still waits for it.
func newRetrySleepIgnoresContext(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{sleepIgnoresContext: true})
}
