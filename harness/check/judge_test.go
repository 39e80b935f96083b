package check

import (
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/stretchr/testify/assert"
)

func synthetic(mut func(h *harness.History)) *harness.History {
	h := &harness.History{
		Version: harness.HistoryVersion, Scenario: "synthetic", Seed: 1234, Services: []string{"inventory", "payment"},
		RequestIDPrefix: "pp-synthetic-ya", Watchdog: 5 * time.Second,
		Calls: []harness.CallRecord{{Seq: 0, Start: 0, End: 10, Op: harness.OpGetItem, Service: harness.ServiceInventory, Status: 200, Digest: harness.DigestOK}},
		Leaks: harness.LeakRecord{
			GoroutinesMeasured: true,
			FDsMeasured:        true, FDBaseline: 20, FDAfter: 21, FDTolerance: 4,
			ServerConns: map[string]harness.ServerConnsAfter{"inventory": {Available: true}, "payment": {Available: true}},
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
		check     harness.Check
		mut       func(*harness.History)
		status    harness.Status
		measured  float64
		reasonHas string
	}{
		{"goroutines clean", GoroutineLeak{}, nil, harness.StatusPass, 0, "no client goroutine"},
		{"goroutines leaked", GoroutineLeak{}, func(h *harness.History) {
			h.Leaks.Leaked = 3
			h.Leaks.LeakedGoroutines = []harness.LeakedGoroutine{
				{Top: "main.(*leaky).Do.func1", Entry: "main.(*leaky).Do.func1", State: "chan receive"},
				{Top: "main.(*leaky).Do.func1", Entry: "main.(*leaky).Do.func1", State: "chan receive, 2 minutes"},
				{Top: "time.Sleep", Entry: "main.poll", State: "sleep"},
			}
		}, harness.StatusFail, 3, "3 client goroutines still running after teardown, e.g. 2 x main.(*leaky).Do.func1 [chan receive]; 1 x main.poll blocked in time.Sleep [sleep]"},
		{"goroutines not measured", GoroutineLeak{}, func(h *harness.History) { h.Leaks.GoroutinesMeasured = false }, harness.StatusNotApplicable, 0, "not measured"},
		{"fds within tolerance", FDLeak{}, nil, harness.StatusPass, 1, "21 open file descriptors"},
		{"fds leaked", FDLeak{}, func(h *harness.History) { h.Leaks.FDAfter = 60 }, harness.StatusFail, 40, "40 more open file descriptors"},
		{"fds stricter bound", FDLeak{Tolerance: 100}, func(h *harness.History) { h.Leaks.FDAfter = 60 }, harness.StatusPass, 40, ""},
		{"fds unavailable", FDLeak{}, func(h *harness.History) { h.Leaks.FDsMeasured = false }, harness.StatusNotApplicable, 0, "cannot be counted"},
		{"driver: goroutines not applicable", GoroutineLeak{}, withDriver(nil), harness.StatusNotApplicable, 0, "the client runs in a child process (go-net-http, ./driver, pid 42): it has no goroutines in this process"},
		{"driver: clean process", FDLeak{}, withDriver(nil), harness.StatusPass, 1, "holds 11 open file descriptors (2 sockets) and 9 threads after idle close, 10 (1) and 7 before its first call"},
		{"driver: fds leaked", FDLeak{}, withDriver(func(p *harness.ProcessLeaks) { p.After.FDs, p.After.Sockets = 30, 21 }), harness.StatusFail, 20,
			"holds 20 more open file descriptors after idle close than before its first call (30 vs 10, of which sockets 21 vs 1)"},
		{"driver: threads leaked", FDLeak{}, withDriver(func(p *harness.ProcessLeaks) { p.After.Threads = 40 }), harness.StatusFail, 33, "holds 33 more threads after idle close"},
		{"driver: not measured", FDLeak{}, withDriver(func(p *harness.ProcessLeaks) { p.Measured, p.Err = false, "the driver had exited" }), harness.StatusNotApplicable, 0,
			"could not be measured after idle close (go-net-http, ./driver, pid 42: the driver had exited)"},
		{"driver: this process unmeasured is irrelevant", FDLeak{}, withDriver(func(*harness.ProcessLeaks) {}), harness.StatusPass, 1, ""},
		{"server conns closed", ServerConnLeak{}, nil, harness.StatusPass, 0, "all connections closed"},
		{"server conns open", ServerConnLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns["payment"] = harness.ServerConnsAfter{Available: true, Open: 7}
		}, harness.StatusFail, 7, "7 connections still open on the servers (payment 7)"},
		{"server conns partly known", ServerConnLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns["payment"] = harness.ServerConnsAfter{Err: harness.ErrNoServerTruth.Error()}
		}, harness.StatusPass, 0, "not measured: payment"},
		{"no server truth", ServerConnLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns = map[string]harness.ServerConnsAfter{"inventory": {Err: "x"}, "payment": {Err: "y"}}
		}, harness.StatusNotApplicable, 0, "no server-side truth"},
		{"no hang", NoHang{}, nil, harness.StatusPass, 0, "all 1 calls returned"},
		{"hang", NoHang{}, func(h *harness.History) {
			h.Calls = append(h.Calls, harness.CallRecord{Seq: 5, Start: int64(time.Second), End: int64(6 * time.Second), Op: harness.OpCreateCharge, Service: harness.ServicePayment, Class: harness.ClassHang})
		}, harness.StatusFail, 1, "1 of 2 calls hung: no return within the watchdog (5s), first payment create_charge (request id pp-synthetic-ya-5) at 1s"},
		{"no calls", NoHang{}, func(h *harness.History) { h.Calls = nil }, harness.StatusNotApplicable, 0, "no calls"},
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
	v := harness.Verdict{Check: "leak.fds", Scenario: "keepalive-race", Seed: 42, Measured: 12, Bound: 4, Unit: "fds", Status: harness.StatusFail, Reason: "sockets never closed"}
	assert.Equal(t, "FAIL leak.fds scenario=keepalive-race seed=42 measured=12 fds bound=4 fds: sockets never closed", v.String())
	v = harness.Verdict{Check: "x", Scenario: "s", Seed: -1, Measured: 0.25, Bound: 0.5, Status: harness.StatusPass, Reason: "ok"}
	assert.Equal(t, "PASS x scenario=s seed=-1 measured=0.25 bound=0.5: ok", v.String())
	assert.True(t, v.Passed())
}

// withDriver makes the history a driver's: its client ran in one child
// process, whose counts mut changes.
func withDriver(mut func(*harness.ProcessLeaks)) func(*harness.History) {
	return func(h *harness.History) {
		p := harness.ProcessLeaks{Command: "./driver", PID: 42, Client: "go-net-http", Measured: true,
			Before: harness.ProcessCounts{FDs: 10, Sockets: 1, Threads: 7}, After: harness.ProcessCounts{FDs: 11, Sockets: 2, Threads: 9}}
		if mut != nil {
			mut(&p)
		}
		h.Leaks.Processes = []harness.ProcessLeaks{p}
		h.Leaks.ThreadTolerance = 8
		h.Leaks.FDsMeasured = false // this process's count is not the client's
	}
}
