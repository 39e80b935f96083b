package check

import (
	"github.com/poolproof/poolproof/harness"
	"testing"
	"time"
)

func TestLedgerCheck(t *testing.T) {
	const (
		pay = "payment"
		ms  = time.Millisecond
	)
	// ledger: 10 ok charges made once, a timeout charged once, a timeout not
	// charged, a 400 not charged, a pool rejection that sent nothing.
	ledger := func() *hb {
		b := newHB()
		st := b.truth(pay)
		for i := range 10 {
			seq := b.call(pay, time.Duration(i)*10*ms, 5*ms, 201, harness.ClassNone)
			b.attempt(pay, seq, time.Duration(i)*10*ms+ms, 2*ms, 201, 1)
			st.Charges[b.h.OrderID(seq)] = 1
		}
		seq := b.call(pay, 200*ms, 2*time.Second, 0, harness.ClassTimeout)
		b.attempt(pay, seq, 201*ms, 3*time.Second, 201, 1)
		st.Charges[b.h.OrderID(seq)] = 1
		seq = b.call(pay, 300*ms, 2*time.Second, 0, harness.ClassTimeout)
		b.attempt(pay, seq, 301*ms, 3*time.Second, 0, 1)
		seq = b.call(pay, 400*ms, 2*ms, 400, harness.ClassNone)
		b.attempt(pay, seq, 401*ms, ms, 400, 1)
		b.call(pay, 500*ms, 250*ms, 0, harness.ClassPoolExhausted)
		return b
	}
	cases := []checkCase{
		{"a consistent ledger", Ledger{}, func() *harness.History { return ledger().done() }, harness.StatusPass,
			[]string{"14 charge calls: 10 ok, 2 fail, 2 info", "every order charged at most once"}},
		{"a retried charge charged twice", Ledger{}, func() *harness.History {
			b := ledger()
			seq := b.call(pay, time.Second, 40*ms, 201, harness.ClassNone)
			b.attempt(pay, seq, time.Second, ms, 0, 1)
			b.attempt(pay, seq, time.Second+20*ms, ms, 201, 2)
			b.truth(pay).Charges[b.h.OrderID(seq)] = 2
			return b.done()
		}, harness.StatusFail, []string{"1 ledger violations", "order pp-synthetic-7-order-14 (request id pp-synthetic-7-14) was charged 2 times; the client saw status 201", "Idempotency-Key"}},
		{"an indeterminate charge charged twice", Ledger{}, func() *harness.History {
			b := ledger()
			b.truth(pay).Charges[b.h.OrderID(10)] = 2 // the timed-out call
			return b.done()
		}, harness.StatusFail, []string{"order pp-synthetic-7-order-10 (request id pp-synthetic-7-10) was charged 2 times; the client saw timeout"}},
		{"a success that was never charged", Ledger{}, func() *harness.History {
			b := ledger()
			delete(b.truth(pay).Charges, b.h.OrderID(3))
			return b.done()
		}, harness.StatusFail, []string{"order pp-synthetic-7-order-3", "reported success (201) but the server holds 0 charges"}},
		{"a local rejection that reached the server", Ledger{}, func() *harness.History {
			b := ledger()
			b.attempt(pay, 13, 501*ms, ms, 201, 1)
			b.truth(pay).Charges[b.h.OrderID(13)] = 1
			return b.done()
		}, harness.StatusFail, []string{"request id pp-synthetic-7-13 (order pp-synthetic-7-order-13) failed locally with pool_exhausted but the server saw 1 attempts"}},
		{"a retry refused by the breaker after attempts the server failed", Ledger{}, func() *harness.History {
			b := ledger()
			seq := b.call(pay, time.Second, 80*ms, 0, harness.ClassCircuitOpen)
			b.attempt(pay, seq, time.Second, ms, 500, 1)
			b.attempt(pay, seq, time.Second+40*ms, ms, 500, 2)
			return b.done()
		}, harness.StatusPass, []string{"15 charge calls: 10 ok, 3 fail, 2 info"}},
		{"a duplicate whose call is not in the history", Ledger{}, func() *harness.History {
			b := ledger()
			b.truth(pay).Charges[b.h.RequestIDPrefix+"-order-99"] = 3
			b.truth(pay).Charges["pp-another-run-order-5"] = 3 // another run's
			return b.done()
		}, harness.StatusFail, []string{"1 ledger violations", "order pp-synthetic-7-order-99 was charged 3 times"}},
		{"the first violation by call number", Ledger{}, func() *harness.History {
			b := ledger()
			b.truth(pay).Charges[b.h.OrderID(7)] = 2
			b.truth(pay).Charges[b.h.OrderID(2)] = 2
			return b.done()
		}, harness.StatusFail, []string{"2 ledger violations", "first: order pp-synthetic-7-order-2 "}},
		{"no payment truth", Ledger{}, func() *harness.History {
			b := ledger()
			delete(b.h.ServerAfterRun, pay)
			return b.done()
		}, harness.StatusNotApplicable, []string{"no server-side truth from payment"}},
		{"no charges", Ledger{}, func() *harness.History {
			b := newHB()
			b.truth(pay)
			b.okCalls("inventory", 0, time.Second, 10*ms, ms, false, 0)
			return b.done()
		}, harness.StatusNotApplicable, []string{"no create_charge call"}},
	}
	runCheckCases(t, cases)
}
