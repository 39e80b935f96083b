package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func synthetic(mut func(h *History)) *History {
	h := &History{
		Version: HistoryVersion, Scenario: "synthetic", Seed: 1234, Services: []string{"inventory", "payment"},
		RequestIDPrefix: "pp-synthetic-ya", Watchdog: 5 * time.Second,
		Calls: []CallRecord{{Seq: 0, Start: 0, End: 10, Op: OpGetItem, Service: ServiceInventory, Status: 200, Digest: DigestOK}},
		Leaks: LeakRecord{
			GoroutinesMeasured: true,
			FDsMeasured:        true, FDBaseline: 20, FDAfter: 21, FDTolerance: 4,
			ServerConns: map[string]ServerConnsAfter{"inventory": {Available: true}, "payment": {Available: true}},
		},
	}
	if mut != nil {
		mut(h)
	}
	return h
}

func TestChecksOnSyntheticHistories(t *testing.T) {
	tests := []struct {
		name      string
		check     Check
		mut       func(*History)
		status    Status
		measured  float64
		reasonHas string
	}{
		{"goroutines clean", GoroutineLeakCheck{}, nil, StatusPass, 0, "no client goroutine"},
		{"goroutines leaked", GoroutineLeakCheck{}, func(h *History) {
			h.Leaks.Leaked = 3
			h.Leaks.LeakedGoroutines = []LeakedGoroutine{
				{Top: "main.(*leaky).Do.func1", Entry: "main.(*leaky).Do.func1", State: "chan receive"},
				{Top: "main.(*leaky).Do.func1", Entry: "main.(*leaky).Do.func1", State: "chan receive, 2 minutes"},
				{Top: "time.Sleep", Entry: "main.poll", State: "sleep"},
			}
		}, StatusFail, 3, "3 client goroutines still running after teardown, e.g. 2 x main.(*leaky).Do.func1 [chan receive]; 1 x main.poll blocked in time.Sleep [sleep]"},
		{"goroutines not measured", GoroutineLeakCheck{}, func(h *History) { h.Leaks.GoroutinesMeasured = false }, StatusNotApplicable, 0, "not measured"},
		{"fds within tolerance", FDLeakCheck{}, nil, StatusPass, 1, "21 open file descriptors"},
		{"fds leaked", FDLeakCheck{}, func(h *History) { h.Leaks.FDAfter = 60 }, StatusFail, 40, "40 more open file descriptors"},
		{"fds stricter bound", FDLeakCheck{Tolerance: 100}, func(h *History) { h.Leaks.FDAfter = 60 }, StatusPass, 40, ""},
		{"fds unavailable", FDLeakCheck{}, func(h *History) { h.Leaks.FDsMeasured = false }, StatusNotApplicable, 0, "cannot be counted"},
		{"server conns closed", ServerConnLeakCheck{}, nil, StatusPass, 0, "all connections closed"},
		{"server conns open", ServerConnLeakCheck{}, func(h *History) {
			h.Leaks.ServerConns["payment"] = ServerConnsAfter{Available: true, Open: 7}
		}, StatusFail, 7, "7 connections still open on the servers (payment 7)"},
		{"server conns partly known", ServerConnLeakCheck{}, func(h *History) {
			h.Leaks.ServerConns["payment"] = ServerConnsAfter{Err: ErrNoServerTruth.Error()}
		}, StatusPass, 0, "not measured: payment"},
		{"no server truth", ServerConnLeakCheck{}, func(h *History) {
			h.Leaks.ServerConns = map[string]ServerConnsAfter{"inventory": {Err: "x"}, "payment": {Err: "y"}}
		}, StatusNotApplicable, 0, "no server-side truth"},
		{"no hang", NoHangCheck{}, nil, StatusPass, 0, "all 1 calls returned"},
		{"hang", NoHangCheck{}, func(h *History) {
			h.Calls = append(h.Calls, CallRecord{Seq: 5, Start: int64(time.Second), End: int64(6 * time.Second), Op: OpCreateCharge, Service: ServicePayment, Class: ClassHang})
		}, StatusFail, 1, "1 of 2 calls hung: no return within the watchdog (5s), first payment create_charge (request id pp-synthetic-ya-5) at 1s"},
		{"no calls", NoHangCheck{}, func(h *History) { h.Calls = nil }, StatusNotApplicable, 0, "no calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.check.Judge(synthetic(tt.mut))
			assert.Equal(t, tt.check.ID(), v.Check)
			assert.Equal(t, tt.status, v.Status, "%s", v)
			assert.Equal(t, tt.measured, v.Measured)
			assert.Contains(t, v.Reason, tt.reasonHas)
			assert.Equal(t, "synthetic", v.Scenario)
			assert.Equal(t, int64(1234), v.Seed)
		})
	}
}

func TestVerdictStringIsOneLineWithScenarioSeedMeasuredAndBound(t *testing.T) {
	v := Verdict{Check: "leak.fds", Scenario: "keepalive-race", Seed: 42, Measured: 12, Bound: 4, Unit: "fds", Status: StatusFail, Reason: "sockets never closed"}
	assert.Equal(t, "FAIL leak.fds scenario=keepalive-race seed=42 measured=12 fds bound=4 fds: sockets never closed", v.String())
	v = Verdict{Check: "x", Scenario: "s", Seed: -1, Measured: 0.25, Bound: 0.5, Status: StatusPass, Reason: "ok"}
	assert.Equal(t, "PASS x scenario=s seed=-1 measured=0.25 bound=0.5: ok", v.String())
	assert.True(t, v.Passed())
}
