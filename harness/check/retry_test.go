package check

import (
	"net/http"
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

func TestRetryChecks(t *testing.T) {
	const (
		inv = "inventory"
		pay = "payment"
		ms  = time.Millisecond
		sec = time.Second
	)
	// retried records a call of svc at start that the server saw n times,
	// each attempt taking 1ms and answered status, gap apart.
	retried := func(b *hb, svc string, start time.Duration, n int, gap time.Duration, status int) uint32 {
		seq := b.call(svc, start, time.Duration(n)*(gap+ms), status, harness.ClassNone)
		at := start
		for range n {
			b.attempt(svc, seq, at, ms, status, 1)
			at += ms + gap
		}
		return seq
	}
	// replayed records a call whose first attempt died unanswered on a
	// reused connection (conn 1 carried earlier calls) and came again at
	// once on a new connection, the transport's replay, followed by n-1
	// more attempts the caller spaced: n+1 attempts at the server.
	replayed := func(b *hb, svc string, start time.Duration, n int) uint32 {
		seq := b.call(svc, start, time.Duration(n)*60*ms, 200, harness.ClassNone)
		b.attempt(svc, seq, start, ms, 0, 1)
		b.attempt(svc, seq, start+ms+ms/2, ms, 503, 99)
		at := start + 60*ms
		for i := 1; i < n; i++ {
			status := 503
			if i == n-1 {
				status = 200
			}
			b.attempt(svc, seq, at, ms, status, 99)
			at += 60 * ms
		}
		return seq
	}
	healthy := func() *hb {
		b := newHB()
		b.okCalls(inv, 0, 2*sec, 10*ms, 2*ms, true, 1)
		b.okCalls(pay, 0, 2*sec, 20*ms, 2*ms, true, 1)
		return b
	}
	cases := []checkCase{
		{"attempts: within the contract", RetryAttempts{}, func() *harness.History {
			b := healthy()
			retried(b, pay, sec, 3, 50*ms, 503)
			return b.done()
		}, harness.StatusPass, []string{"at most 3 attempts each by the caller"}},
		{"attempts: a retry storm on a charge", RetryAttempts{}, func() *harness.History {
			b := healthy()
			seq := retried(b, pay, sec, 10, 0, 503)
			_ = seq
			return b.done()
		}, harness.StatusFail, []string{"1 of", "payment POST pp-synthetic-7-", ": 10 attempts, declared max 3", "stop retrying after MaxAttempts"}},
		{"attempts: a transport replay is told apart", RetryAttempts{}, func() *harness.History {
			b := healthy()
			replayed(b, inv, sec, 3)
			return b.done()
		}, harness.StatusPass, []string{"at most 3 attempts each by the caller", "1 transport replays told apart"}},
		{"attempts: strict counts the replay", RetryAttempts{Strict: true}, func() *harness.History {
			b := healthy()
			replayed(b, inv, sec, 3)
			return b.done()
		}, harness.StatusFail, []string{"4 attempts, declared max 3"}},
		{"attempts: a keyed charge may be replayed too", RetryAttempts{}, func() *harness.History {
			b := healthy()
			b.h.Workload.KeyedCharges = true
			replayed(b, pay, sec, 3)
			return b.done()
		}, harness.StatusPass, nil},
		{"attempts: a fourth attempt after an answer is the caller's, not a replay", RetryAttempts{}, func() *harness.History {
			b := healthy()
			retried(b, inv, sec, 4, 0, 503)
			return b.done()
		}, harness.StatusFail, []string{"4 attempts, declared max 3"}},
		{"attempts: other runs' requests are not counted", RetryAttempts{}, func() *harness.History {
			b := healthy()
			st := b.truth(pay)
			for i := range 20 {
				st.Requests = append(st.Requests, fakeservers.RequestRecord{RequestID: "pp-other-1-5", Attempt: i + 1, Arrived: b.at(sec), Method: "POST", Status: 503})
			}
			return b.done()
		}, harness.StatusPass, nil},
		{"attempts: no server truth", RetryAttempts{}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, sec, 10*ms, ms, false, 0)
			return b.done()
		}, harness.StatusNotApplicable, []string{"no server-side truth"}},

		{"backoff: spaced retries, budgeted during the fault", RetryBackoff{}, func() *harness.History {
			b := healthy()
			b.outage(inv, 3*sec, 4*sec)
			for i := range 100 {
				n := 1
				if i%5 == 0 {
					n = 2 // a 20% retry budget
				}
				retried(b, inv, 3*sec+time.Duration(i)*10*ms, n, 20*ms, 503)
			}
			return b.done()
		}, harness.StatusPass, []string{"median gap between retries 20ms over 20 retries", "inventory: 1.20 server attempts per call during the fault"}},
		{"backoff: retries at once", RetryBackoff{}, func() *harness.History {
			b := healthy()
			for i := range 10 {
				retried(b, inv, sec+time.Duration(i)*50*ms, 3, 200*time.Microsecond, 503)
			}
			return b.done()
		}, harness.StatusFail, []string{"median gap between retries of the same request is 200µs over 20 retries", "backoff"}},
		{"backoff: a retry storm during the fault", RetryBackoff{}, func() *harness.History {
			b := healthy()
			b.outage(inv, 3*sec, 4*sec)
			for i := range 100 {
				retried(b, inv, 3*sec+time.Duration(i)*10*ms, 10, 20*ms, 503)
			}
			return b.done()
		}, harness.StatusFail, []string{"inventory: 910 server attempts for 100 calls during the fault", "retry budget"}},
		{"backoff: nothing retried, no fault", RetryBackoff{}, func() *harness.History { return healthy().done() }, harness.StatusNotApplicable, []string{"no request was retried"}},

		{"retry-after: honoured", RetryAfter{RetryAfter: sec}, func() *harness.History {
			b := healthy()
			seq := b.call(inv, 3*sec, 1100*ms, 200, harness.ClassNone)
			b.attempt(inv, seq, 3*sec, ms, 429, 1)
			b.attempt(inv, seq, 3*sec+ms+1050*ms, ms, 200, 1)
			return b.done()
		}, harness.StatusPass, []string{"all 1 retries after an answer with a Retry-After waited what it asked (shortest asked 1s); shortest wait 1.05s"}},
		{"retry-after: ignored", RetryAfter{RetryAfter: sec}, func() *harness.History {
			b := healthy()
			seq := b.call(inv, 3*sec, 200*ms, 200, harness.ClassNone)
			b.attempt(inv, seq, 3*sec, ms, 429, 1)
			b.attempt(inv, seq, 3*sec+ms+100*ms, ms, 200, 1)
			return b.done()
		}, harness.StatusFail, []string{"1 of 1 retries after an answer with a Retry-After came before the wait it asked", "inventory pp-synthetic-7-300 answered 429 with Retry-After 1s, and attempt 2 arrived 100ms after it"}},
		{"retry-after: a 503's recorded Retry-After ignored", RetryAfter{}, func() *harness.History {
			b := healthy()
			seq := b.call(inv, 3*sec, 2100*ms, 200, harness.ClassNone)
			b.attempt(inv, seq, 3*sec, ms, 503, 1)
			b.retryAfter(inv, "30")
			b.attempt(inv, seq, 3*sec+ms+2*sec, ms, 200, 1)
			return b.done()
		}, harness.StatusFail, []string{"answered 503 with Retry-After 30s, and attempt 2 arrived 2s after it"}},
		{"retry-after: an HTTP-date honoured", RetryAfter{}, func() *harness.History {
			b := healthy()
			seq := b.call(inv, 3*sec, 2100*ms, 200, harness.ClassNone)
			b.attempt(inv, seq, 3*sec, 0, 503, 1)
			b.retryAfter(inv, b.at(3*sec+2*sec).UTC().Format(http.TimeFormat))
			b.attempt(inv, seq, 3*sec+2050*ms, ms, 200, 1)
			return b.done()
		}, harness.StatusPass, []string{"waited what it asked"}},
		{"retry-after: a 503 with a long Retry-After not retried", RetryAfter{}, func() *harness.History {
			b := healthy()
			seq := b.call(inv, 3*sec, 2*ms, 503, harness.ClassNone)
			b.attempt(inv, seq, 3*sec, ms, 503, 1)
			b.retryAfter(inv, "30")
			return b.done()
		}, harness.StatusPass, []string{"none retried"}},
		{"retry-after: a 429 not retried", RetryAfter{RetryAfter: sec}, func() *harness.History {
			b := healthy()
			seq := b.call(inv, 3*sec, 2*ms, 429, harness.ClassNone)
			b.attempt(inv, seq, 3*sec, ms, 429, 1)
			return b.done()
		}, harness.StatusPass, []string{"none retried"}},
		{"retry-after: none asked", RetryAfter{RetryAfter: sec}, func() *harness.History { return healthy().done() }, harness.StatusNotApplicable, []string{"no answer of the servers carried a Retry-After"}},
	}
	runCheckCases(t, cases)
}
