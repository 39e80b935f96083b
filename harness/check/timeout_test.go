package check

import (
	"github.com/poolproof/poolproof/harness"
	"testing"
	"time"
)

func TestRequestBoundCheck(t *testing.T) {
	const inv, pay = "inventory", "payment"
	cases := []checkCase{
		{"within the timeout", RequestBound{}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, time.Second, 10*time.Millisecond, 5*time.Millisecond, false, 0)
			b.call(inv, time.Second, 2100*time.Millisecond, 0, harness.ClassTimeout) // 2s timeout + a little
			return b.done()
		}, harness.StatusPass, []string{"all 101 calls ended within their request timeout + margin", "took 2.1s"}},
		{"a blackholed call runs for 10s", RequestBound{}, func() *harness.History {
			b := newHB()
			b.okCalls(inv, 0, time.Second, 10*time.Millisecond, 5*time.Millisecond, false, 0)
			b.call(pay, time.Second, 10*time.Second, 0, harness.ClassTimeout)
			return b.done()
		}, harness.StatusFail, []string{"1 of 101 calls outlived", "payment create_charge (request id pp-synthetic-7-100, started 1s) took 10s", "put a deadline on the whole call"}},
		{"a hung call", RequestBound{}, func() *harness.History {
			b := newHB()
			b.call(inv, 0, 5*time.Second, 0, harness.ClassHang)
			return b.done()
		}, harness.StatusFail, []string{"hung for at least 5s"}},
		{"the profile's timeout per service", RequestBound{}, func() *harness.History {
			b := newHB()
			b.h.Profile.Services = map[string]harness.Contract{inv: {RequestTimeout: 100 * time.Millisecond}}
			b.call(inv, 0, 700*time.Millisecond, 200, harness.ClassNone)  // bound 100+25+500 = 625ms
			b.call(pay, 0, 1900*time.Millisecond, 200, harness.ClassNone) // bound 3s: fine
			return b.done()
		}, harness.StatusFail, []string{"1 of 2 calls", "inventory get_item"}},
		{"canceled calls are the harness's", RequestBound{}, func() *harness.History {
			b := newHB()
			b.call(inv, 0, 100*time.Millisecond, 200, harness.ClassNone)
			b.call(inv, 0, 9*time.Second, 0, harness.ClassCanceled)
			return b.done()
		}, harness.StatusPass, []string{"all 1 calls"}},
		{"no calls", RequestBound{}, func() *harness.History { return newHB().done() }, harness.StatusNotApplicable, []string{"no calls"}},
	}
	runCheckCases(t, cases)
}
