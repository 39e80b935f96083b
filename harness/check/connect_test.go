package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/stretchr/testify/assert"
)

// stalledRun builds a history of inventory under the connect-never-completes
// schedule (a stall from 300ms to 1.8s, open connections dropped at its
// start), declaring ct, whose 12 callers each fail one call after another
// in the stall after `fails`; with reached, every failed call's request
// arrived at the server all the same. Before the stall calls succeed.
func stalledRun(ct harness.Contract, fails time.Duration, reached bool) func() *harness.History {
	const ms = time.Millisecond
	return func() *harness.History {
		b := newHB(fakeservers.Inventory)
		b.h.Profile = harness.Profile{Default: ct}
		b.okCalls(fakeservers.Inventory, 0, 300*ms, 10*ms, 5*ms, true, 1)
		b.step(300*ms, harness.AddToxic(fakeservers.Inventory, harness.Timeout("stall", harness.Upstream, 0)))
		b.step(301*ms, harness.DisableProxy(fakeservers.Inventory))
		b.step(302*ms, harness.EnableProxy(fakeservers.Inventory))
		b.step(1800*ms, harness.RemoveToxic(fakeservers.Inventory, "stall"))
		for w := range 12 {
			for at := 302*ms + time.Duration(w)*ms; at < 1800*ms; at += fails {
				seq := b.call(fakeservers.Inventory, at, fails, 0, harness.ClassTimeout)
				if reached {
					b.attempt(fakeservers.Inventory, seq, at+ms, fails-ms, 0, 2)
				}
			}
		}
		return b.done()
	}
}

func TestConnectTimeout(t *testing.T) {
	const ms = time.Millisecond
	single := harness.Contract{MaxConns: 16, RequestTimeout: 2 * time.Second, MaxAttempts: 1, ConnectTimeout: 200 * ms}
	// 3 x 200ms + 50ms + 100ms of backoff = 750ms, + 500ms.
	retrying := single
	retrying.MaxAttempts, retrying.BackoffBase = 3, 50*ms
	// 3 x 1s is longer than the request timeout, which bounds it: 2s + 1s.
	slowConnect := retrying
	slowConnect.ConnectTimeout = time.Second
	undeclared := single
	undeclared.ConnectTimeout = 0
	blackholed := func() *harness.History {
		b := newHB(fakeservers.Inventory)
		b.h.Profile = harness.Profile{Default: single}
		b.okCalls(fakeservers.Inventory, 0, 300*ms, 10*ms, 5*ms, true, 1)
		b.step(300*ms, harness.AddToxic(fakeservers.Inventory, harness.Timeout("blackhole", harness.Downstream, 0)))
		for at := 300 * ms; at < 1800*ms; at += 20 * ms {
			b.call(fakeservers.Inventory, at, 2*time.Second, 0, harness.ClassTimeout)
		}
		return b.done()
	}
	// A stall on connections kept open is a blackhole for the requests on
	// them, not a connect that never completes.
	stallNotDropped := func() *harness.History {
		h := stalledRun(single, 2*time.Second, false)()
		h.Steps = append(h.Steps[:1:1], h.Steps[3:]...)
		return h
	}
	runCheckCases(t, []checkCase{
		{"no handshake timeout: only the request timeout ends the call", ConnectTimeout{}, stalledRun(single, 2*time.Second, false), harness.StatusFail,
			[]string{"outlived the connect bound", "1 x connect_timeout 200ms + margin = 700ms", "failed after 2s", "dial and the TLS handshake timeouts"}},
		{"the connect timeout ends the call", ConnectTimeout{}, stalledRun(single, 210*ms, false), harness.StatusPass,
			[]string{"failed within the connect bound", "failed after 210ms", "= 700ms"}},
		{"a retrying client is allowed its attempts and backoff", ConnectTimeout{}, stalledRun(retrying, 700*ms, false), harness.StatusPass,
			[]string{"3 x connect_timeout 200ms + margin = 1.25s"}},
		{"a retrying client without a handshake timeout", ConnectTimeout{}, stalledRun(retrying, 2*time.Second, false), harness.StatusFail,
			[]string{"= 1.25s"}},
		{"never beyond the request timeout", ConnectTimeout{}, stalledRun(slowConnect, 2*time.Second, false), harness.StatusPass,
			[]string{"request_timeout 2s, shorter than 3 x connect_timeout 1s + margin = 3s"}},
		{"calls that reached the server are not judged", ConnectTimeout{}, stalledRun(single, 2*time.Second, true), harness.StatusNotApplicable,
			[]string{"0 calls in a connect stall failed without reaching the server (need 10)"}},
		{"too few calls failed that way", ConnectTimeout{MinCalls: 100}, stalledRun(single, 2*time.Second, false), harness.StatusNotApplicable,
			[]string{"12 calls in a connect stall", "(need 100)"}},
		{"no connect timeout declared", ConnectTimeout{}, stalledRun(undeclared, 2*time.Second, false), harness.StatusNotApplicable,
			[]string{"declares no connect_timeout", "declare connect_timeout"}},
		{"a blackhole is no connect stall", ConnectTimeout{}, blackholed, harness.StatusNotApplicable,
			[]string{"inventory had no connect stall"}},
		{"a stall on kept connections is no connect stall", ConnectTimeout{}, stallNotDropped, harness.StatusNotApplicable,
			[]string{"inventory had no connect stall"}},
	})
}

func TestConnectStalls(t *testing.T) {
	h := stalledRun(harness.Contract{}, time.Second, false)()
	assert.Equal(t, []harness.Window{{Service: fakeservers.Inventory, Start: 301 * time.Millisecond, End: 1800 * time.Millisecond, Closed: true}},
		connectStalls(h, fakeservers.Inventory))
	assert.Empty(t, connectStalls(h, fakeservers.Payment))
}
