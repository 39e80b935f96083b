package check

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// hb builds synthetic histories for the check tests: calls as the workload
// saw them and, per service, the server's truth, all at offsets from a
// fixed workload start.
type hb struct {
	h   *harness.History
	t0  time.Time
	seq uint32
}

func newHB(services ...string) *hb {
	if len(services) == 0 {
		services = []string{fakeservers.Inventory, fakeservers.Payment}
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &hb{t0: t0, h: &harness.History{
		Version: harness.HistoryVersion, Scenario: "synthetic", Seed: 7, Started: t0,
		Services: services, RequestIDPrefix: "pp-synthetic-7", Watchdog: 5 * time.Second,
		Profile:  harness.Profile{Default: fullContract},
		Workload: harness.Workload{Mode: harness.ClosedLoop, Workers: 8, Duration: 10 * time.Second},
	}}
}

func (b *hb) at(d time.Duration) time.Time { return b.t0.Add(d) }

// call records one call and returns its seq.
func (b *hb) call(svc string, start, latency time.Duration, status int, class harness.ErrorClass) uint32 {
	id := harness.ServiceIDOf(svc)
	op := harness.OpGetItem
	switch id {
	case harness.ServicePayment:
		op = harness.OpCreateCharge
	case harness.ServiceNotification:
		op = harness.OpSendNotification
	}
	seq := b.seq
	b.seq++
	d := harness.DigestNotRead
	if class == harness.ClassNone && status > 0 {
		d = harness.DigestOK
	}
	b.h.Calls = append(b.h.Calls, harness.CallRecord{Seq: seq, Start: int64(start), End: int64(start + latency), Service: id, Op: op,
		Status: int16(status), Class: class, Digest: d, Bytes: 100})
	return seq
}

// okCalls records calls every `every` in [from, to), each taking latency and
// succeeding; with attempts, the server sees each once, on connection conn.
func (b *hb) okCalls(svc string, from, to, every, latency time.Duration, attempts bool, conn uint64) {
	for t := from; t < to; t += every {
		seq := b.call(svc, t, latency, 200, harness.ClassNone)
		if attempts {
			b.attempt(svc, seq, t+latency/4, latency/2, 200, conn)
		}
	}
}

func (b *hb) truth(svc string) *fakeservers.Stats {
	if b.h.ServerAfterRun == nil {
		b.h.ServerAfterRun = map[string]harness.ServerTruth{}
	}
	t, ok := b.h.ServerAfterRun[svc]
	if !ok {
		t = harness.ServerTruth{Available: true, Stats: &fakeservers.Stats{Service: svc, Charges: map[string]int{}}}
		b.h.ServerAfterRun[svc] = t
	}
	return t.Stats
}

// attempt records one server-side attempt of call seq.
func (b *hb) attempt(svc string, seq uint32, arrived, took time.Duration, status int, conn uint64) {
	st := b.truth(svc)
	rid := b.h.RequestID(seq)
	n := 1
	for _, r := range st.Requests {
		if r.RequestID == rid {
			n++
		}
	}
	method := "GET"
	if svc != fakeservers.Inventory {
		method = "POST"
	}
	st.Requests = append(st.Requests, fakeservers.RequestRecord{RequestID: rid, Attempt: n, ConnID: conn, Arrived: b.at(arrived),
		Finished: b.at(arrived + took), Method: method, Status: status})
}

// retryAfter sets the Retry-After of svc's last recorded answer.
func (b *hb) retryAfter(svc, header string) {
	st := b.truth(svc)
	st.Requests[len(st.Requests)-1].RetryAfter = header
}

// conn records one connection; closed < 0 leaves it open.
func (b *hb) conn(svc string, accepted, closed time.Duration) uint64 {
	st := b.truth(svc)
	id := uint64(len(st.Connections) + 1)
	c := fakeservers.ConnRecord{ID: id, Accepted: b.at(accepted), Protocol: fakeservers.ProtoHTTP1}
	if closed >= 0 {
		c.Closed = b.at(closed)
	}
	st.Connections = append(st.Connections, c)
	st.Accepted++
	return id
}

func (b *hb) step(at time.Duration, a harness.Action) {
	b.h.Steps = append(b.h.Steps, harness.StepRecord{Step: harness.Step{At: at, Action: a}, Started: at, Ended: at + time.Millisecond, Outcome: harness.StepApplied})
}

// outage puts a 503 HTTP fault on svc from `from` to `to`.
func (b *hb) outage(svc string, from, to time.Duration) {
	b.step(from, harness.SetHTTPFaults(svc, fakeservers.Fault{Kind: fakeservers.FaultStatus, Status: 503}))
	b.step(to, harness.ClearHTTPFaults(svc))
}

func (b *hb) done() *harness.History {
	for _, c := range b.h.Calls {
		b.h.Elapsed = max(b.h.Elapsed, time.Duration(c.End))
	}
	return b.h
}

// checkCase is one row of the check tables.
type checkCase struct {
	name      string
	check     harness.Check
	build     func() *harness.History
	status    harness.Status
	reasonHas []string
}

// runCheckCases judges every case (see judgeCase).
func runCheckCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) { judgeCase(t, tt) })
	}
}

// judgeCase judges tt, wants its status and reason, then judges it again
// from the history saved and loaded and wants the same verdict, which it
// returns for the caller to look further.
func judgeCase(t *testing.T, tt checkCase) harness.Verdict {
	t.Helper()
	h := tt.build()
	v := tt.check.Judge(h)
	assert.Equal(t, tt.check.ID(), v.Check)
	assert.Equal(t, tt.status, v.Status, "%s", v)
	for _, s := range tt.reasonHas {
		assert.Contains(t, v.Reason, s)
	}
	assert.NotEmpty(t, v.Reason)
	assert.NotContains(t, v.Reason, "\n")

	var buf bytes.Buffer
	require.NoError(t, h.Save(&buf))
	loaded, err := harness.LoadHistory(&buf)
	require.NoError(t, err)
	assert.Equal(t, v, tt.check.Judge(loaded), "the verdict changed after Save/LoadHistory")
	return v
}

func TestFaultWindows(t *testing.T) {
	tests := []struct {
		name  string
		steps func(b *hb)
		svc   string
		want  []harness.Window
	}{
		{"none", func(b *hb) {}, "inventory", nil},
		{"http fault cleared", func(b *hb) { b.outage("inventory", time.Second, 3*time.Second) }, "inventory",
			[]harness.Window{{Service: "inventory", Start: time.Second, End: 3 * time.Second, Closed: true, HTTPFaults: true}}},
		{"other service only", func(b *hb) { b.outage("payment", time.Second, 3*time.Second) }, "inventory", nil},
		{"two toxics: closes when the last is removed", func(b *hb) {
			b.step(time.Second, harness.AddToxic("inventory", harness.Latency("lat", harness.Downstream, 100*time.Millisecond, 0)))
			b.step(2*time.Second, harness.AddToxic("inventory", harness.ResetPeer("", harness.Upstream, 0)))
			b.step(3*time.Second, harness.RemoveToxic("inventory", "lat"))
			b.step(4*time.Second, harness.RemoveToxic("inventory", "reset_peer_upstream"))
		}, "inventory", []harness.Window{{Service: "inventory", Start: time.Second, End: 4 * time.Second, Closed: true}}},
		{"disable proxy to the end of the run", func(b *hb) { b.step(2*time.Second, harness.DisableProxy("inventory")) }, "inventory",
			[]harness.Window{{Service: "inventory", Start: 2 * time.Second, End: 10 * time.Second}}},
		{"two windows", func(b *hb) {
			b.step(time.Second, harness.DisableProxy("inventory"))
			b.step(2*time.Second, harness.EnableProxy("inventory"))
			b.step(5*time.Second, harness.DisableProxy("inventory"))
			b.step(6*time.Second, harness.EnableProxy("inventory"))
		}, "inventory", []harness.Window{
			{Service: "inventory", Start: time.Second, End: 2 * time.Second, Closed: true},
			{Service: "inventory", Start: 5 * time.Second, End: 6 * time.Second, Closed: true},
		}},
		{"unknown toxic name closes the toxics", func(b *hb) {
			b.step(time.Second, harness.AddToxic("inventory", harness.Latency("lat", harness.Downstream, 100*time.Millisecond, 0)))
			b.step(3*time.Second, harness.RemoveToxic("inventory", "other"))
		}, "inventory", []harness.Window{{Service: "inventory", Start: time.Second, End: 3 * time.Second, Closed: true}}},
		{"failed and unreached steps change nothing", func(b *hb) {
			b.step(time.Second, harness.DisableProxy("inventory"))
			b.h.Steps[0].Outcome, b.h.Steps[0].Err = harness.StepFailed, "boom"
			b.h.Steps = append(b.h.Steps, harness.StepRecord{Step: harness.Step{At: 20 * time.Second, Action: harness.DisableProxy("inventory")}, Started: -1, Ended: -1, Outcome: harness.StepNotReached, Err: harness.ErrStepNotReached.Error()})
		}, "inventory", nil},
		{"keep-alive limit, then back to defaults", func(b *hb) {
			b.step(time.Second, harness.SetKeepAlive("inventory", fakeservers.KeepAlive{IdleTimeout: fakeservers.Duration(time.Second)}))
			b.step(4*time.Second, harness.SetKeepAlive("inventory", fakeservers.KeepAlive{}))
		}, "inventory", []harness.Window{{Service: "inventory", Start: time.Second, End: 4 * time.Second, Closed: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newHB()
			b.okCalls("inventory", 0, 10*time.Second, 100*time.Millisecond, 100*time.Millisecond, false, 0)
			tt.steps(b)
			got := harness.FaultWindows(b.done(), tt.svc)
			for i := range got {
				got[i].Labels = nil
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, percentile(ds, 0.5))
	assert.Equal(t, 99*time.Millisecond, percentile(ds, 0.99))
	assert.Equal(t, 100*time.Millisecond, percentile(ds, 1))
	assert.Equal(t, time.Millisecond, percentile(ds, 0))
	assert.Equal(t, time.Duration(0), percentile(nil, 0.5))
}

func TestAllCheckIDsAreUniqueAndMatchTheChecks(t *testing.T) {
	ids := AllIDs()
	seen := map[string]bool{}
	for _, id := range ids {
		assert.False(t, seen[id], id)
		seen[id] = true
	}
	for _, c := range []harness.Check{
		GoroutineLeak{}, FDLeak{}, ServerConnLeak{}, NoHang{},
		PoolBound{}, PoolChurn{}, PoolExhaustion{}, RequestBound{},
		RetryAttempts{}, RetryBackoff{}, RetryAfter{}, Ledger{},
		BreakerOpens{}, BreakerHalfOpen{}, BreakerRecovers{},
		Isolation{}, RecoveryThroughput{}, RecoveryLatency{}, IntegrityDigest{},
	} {
		assert.True(t, seen[c.ID()], "%s missing from AllIDs", c.ID())
	}
	assert.Len(t, Docs(), len(ids))
}

// BenchmarkJudgeAll judges every check on a history of 100k calls with
// server truth and an outage; compare ns/op against BenchmarkSortCalls (one
// sort of the same calls) to see the checks stay O(n log n).
func BenchmarkJudgeAll(b *testing.B) {
	h := bigHistory(100_000)
	checks := []harness.Check{
		PoolBound{}, PoolChurn{}, PoolExhaustion{Latency: time.Millisecond}, RequestBound{},
		RetryAttempts{}, RetryBackoff{}, RetryAfter{RetryAfter: time.Second}, Ledger{},
		BreakerOpens{}, BreakerHalfOpen{}, BreakerRecovers{},
		Isolation{Down: "inventory"}, RecoveryThroughput{}, RecoveryLatency{}, IntegrityDigest{},
	}
	b.ReportAllocs()
	for b.Loop() {
		harness.Judge(h, checks...)
	}
}

func BenchmarkSortCalls(b *testing.B) {
	h := bigHistory(100_000)
	b.ReportAllocs()
	for b.Loop() {
		serviceCalls(h, "inventory", 0, time.Hour)
	}
}

func bigHistory(n int) *harness.History {
	b := newHB("inventory", "payment")
	b.outage("inventory", 4*time.Second, 6*time.Second)
	st := b.truth("payment")
	b.conn("inventory", 0, -1)
	for i := range n {
		at := time.Duration(i) * 100 * time.Microsecond
		if i%2 == 0 {
			b.h.Calls = append(b.h.Calls, harness.CallRecord{Seq: uint32(i), Start: int64(at), End: int64(at + time.Millisecond), Service: harness.ServiceInventory, Op: harness.OpGetItem, Status: 200, Digest: harness.DigestOK})
			b.truth("inventory").Requests = append(b.truth("inventory").Requests, fakeservers.RequestRecord{RequestID: b.h.RequestID(uint32(i)), Attempt: 1, ConnID: 1, Arrived: b.at(at), Finished: b.at(at + time.Millisecond), Method: "GET", Status: 200})
		} else {
			b.h.Calls = append(b.h.Calls, harness.CallRecord{Seq: uint32(i), Start: int64(at), End: int64(at + time.Millisecond), Service: harness.ServicePayment, Op: harness.OpCreateCharge, Status: 201, Digest: harness.DigestOK})
			st.Requests = append(st.Requests, fakeservers.RequestRecord{RequestID: b.h.RequestID(uint32(i)), Attempt: 1, ConnID: 1, Arrived: b.at(at), Finished: b.at(at + time.Millisecond), Method: "POST", Status: 201})
			st.Charges[b.h.OrderID(uint32(i))] = 1
		}
	}
	b.seq = uint32(n)
	return b.done()
}

// fullContract declares every promise, so that the synthetic histories
// exercise every check (a profile that declares nothing leaves the
// promise-specific ones not applicable).
var fullContract = harness.Contract{
	MaxConns:         16,
	PoolWait:         250 * time.Millisecond,
	RequestTimeout:   2 * time.Second,
	MaxAttempts:      3,
	BreakerOpenDelay: time.Second,
	RecoveryTime:     3 * time.Second,
	HalfOpenProbes:   3,
}
