package check

import "github.com/poolproof/poolproof/harness"

// All lists a zero value of every check, in report order (the order of
// Docs): the zero value takes every bound from the contract a history
// declares.
func All() []harness.Check {
	return []harness.Check{
		GoroutineLeak{}, FDLeak{}, ServerConnLeak{}, NoHang{},
		PoolBound{}, PoolChurn{}, PoolExhaustion{}, RequestBound{},
		RetryAttempts{}, RetryBackoff{}, RetryAfter{}, Ledger{},
		BreakerOpens{}, BreakerHalfOpen{}, BreakerRecovers{}, Isolation{},
		RecoveryThroughput{}, RecoveryLatency{}, IntegrityDigest{},
		Goodput{}, CallerDeadline{}, ConnLifetime{}, IdleTimeout{},
		MetricsTruthful{},
		AbandonedWork{},
		ConnectTimeout{},
		BackoffGrows{}, Jitter{}, GivesUpPromptly{}, AttemptsUsed{}, BackoffBounded{},
	}
}

// Every check of this package loads from a saved scenario by its id.
func init() {
	for _, c := range All() {
		harness.RegisterCheck(c)
	}
}
