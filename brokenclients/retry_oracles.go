package brokenclients

import (
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/pooledclient"
)

// retryLoopProfile is what the gallery's own retry loop (retryingClient)
// declares: Contract, but for the jitter it does not draw and the retry
// budget it does not keep.
func retryLoopProfile() harness.Profile {
	ct := Contract
	ct.BackoffJitter, ct.RetryBudget = 0, 0
	return harness.Profile{Default: ct}
}

// retryOracleEntries are the retry bugs real Go HTTP client libraries
// shipped and the standard catalog once certified alike with their fixes.
func retryOracleEntries() []Entry {
	return []Entry{
		{
			Name: "constant-backoff",
			Bug: "is configured for exponential backoff but waits the same short delay before every retry: " +
				"a struggling server gets no more room on the third attempt than on the second",
			CaughtBy: []string{check.IDRetryBackoffGrows},
			Factory:  newConstantBackoff,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "uncapped-backoff",
			Bug: "is configured with a 60ms cap on its backoff but keeps doubling past it: waits grow without bound, " +
				"so a call that retries a few times outlives its caller's patience for nothing",
			CaughtBy: []string{check.IDRetryBackoffBounded},
			Factory:  newUncappedBackoff,
			Profile:  uncappedProfile(),
		},
		{
			Name: "no-jitter",
			Bug: "declares a jittered backoff but waits exactly the computed delay: callers that failed together " +
				"retry together, in synchronized waves against a recovering server",
			CaughtBy: []string{check.IDRetryJitter},
			Factory:  newNoJitter,
		},
		{
			Name: "sleeps-after-last-attempt",
			Bug: "sleeps its backoff after the last attempt too, before it hands the last answer back: " +
				"every call that exhausted its attempts reaches the caller one backoff late, for nothing",
			CaughtBy: []string{check.IDRetryGivesUpPromptly},
			Factory:  newSleepsAfterLastAttempt,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "honours-any-retry-after",
			Bug: "waits whatever Retry-After a server asks for, with no cap: a 503 asking for 30s holds the call until its deadline " +
				"and ends it in a timeout, where the caller could have had the 503 at once",
			CaughtBy: []string{check.IDRetryGivesUpPromptly},
			Factory:  newHonoursAnyRetryAfter,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "gives-up-early",
			Bug: "declares 3 attempts but its loop stops one short (an off-by-one in the attempt count): " +
				"a call that a third attempt would have saved fails, and callers size their timeouts for retries that never come",
			CaughtBy: []string{check.IDRetryAttemptsUsed},
			Factory:  newGivesUpEarly,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "never-retries-429",
			Bug: "treats a 429 as final and hands it back even when its Retry-After is short and attempts and time are left: " +
				"callers see throttling errors the client promised to absorb",
			CaughtBy: []string{check.IDRetryAttemptsUsed},
			Factory:  newNeverRetries429,
			Profile:  retryLoopProfile(),
		},
		{
			Name: "closes-without-drain",
			Bug: "closes the body of every 5xx it retries without reading it: the transport cannot reuse a connection with an unread body, " +
				"so every retry dials a new connection, a TCP and TLS handshake more for a server already failing",
			CaughtBy: []string{check.IDPoolChurn},
			Factory:  newClosesWithoutDrain,
			Profile:  retryLoopProfile(),
		},
	}
}

func newConstantBackoff(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{constantBackoff: true})
}

func newNoJitter(svc harness.Service) (harness.Client, error) {
	return configured(svc, func(c *pooledclient.Config) { c.Retry.Jitter = 0 })
}

func newClosesWithoutDrain(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{closeUndrained: true})
}

func newSleepsAfterLastAttempt(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{sleepAfterLast: true})
}

func newHonoursAnyRetryAfter(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{honourAnyRetryAfter: true})
}

func newGivesUpEarly(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{oneAttemptShort: true})
}

func newNeverRetries429(svc harness.Service) (harness.Client, error) {
	return newRetrying(svc, retryBugs{no429Retry: true})
}

// uncappedBackoffCap is the cap uncapped-backoff is configured with, low
// enough that its second retry passes it.
const uncappedBackoffCap = 60 * time.Millisecond

// uncappedProfile declares the retry loop with its backoff capped at
// uncappedBackoffCap.
func uncappedProfile() harness.Profile {
	p := retryLoopProfile()
	p.Default.BackoffCap = uncappedBackoffCap
	return p
}

func newUncappedBackoff(svc harness.Service) (harness.Client, error) {
	cl, err := newRetrying(svc, retryBugs{uncapped: true})
	if err != nil {
		return nil, err
	}
	cl.(*retryingClient).maxBackoff = uncappedBackoffCap
	return cl, nil
}
