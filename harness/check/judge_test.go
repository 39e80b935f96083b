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
		{"server conns idle pool closed by the servers", ServerConnLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns["inventory"] = harness.ServerConnsAfter{Available: true, IdleClosed: 5}
		}, harness.StatusPass, 0, "all connections closed after teardown; the servers closed 5 idle pooled connections the client kept for reuse (inventory 5), which is no leak"},
		{"server conns held, described", ServerConnLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns["inventory"] = harness.ServerConnsAfter{Available: true, Open: 3, ClientClosedIdle: true, Held: []harness.HeldConns{
				{Reason: harness.HeldInFlight, LastRoute: "GET /v1/catalog", Count: 1, Requests: 4, Oldest: 2 * time.Second, Newest: 2 * time.Second},
				{Reason: harness.HeldNotReturned, LastRoute: "GET /v1/items/{sku}", Count: 2, Requests: 2, Oldest: 1500 * time.Millisecond, Newest: 800 * time.Millisecond},
			}}
		}, harness.StatusFail, 3, "3 connections still open on the servers (inventory 3) after teardown, held by the client: inventory: " +
			"2 answered, yet open after the client closed its idle connections (last GET /v1/items/{sku}, 1 request each, open 800ms to 1.5s); " +
			"1 still serving a request (last GET /v1/catalog, 4 requests, open 2s). " +
			"An answered connection that outlives CloseIdleConnections was never given back to the pool: a response body never read to the end or closed; " +
			"a request still in flight is a response the client is still reading"},
		{"server conns beyond the pool", ServerConnLeak{}, func(h *harness.History) {
			h.Profile = harness.Profile{Default: harness.Contract{MaxConns: 4}}
			h.Leaks.ServerConns["payment"] = harness.ServerConnsAfter{Available: true, Open: 40, IdleClosed: 4, Held: []harness.HeldConns{
				{Reason: harness.HeldBeyondPool, LastRoute: "POST /v1/charges", Count: 40, Requests: 40, Oldest: time.Second, Newest: time.Second},
			}}
		}, harness.StatusFail, 40, "payment: 40 idle beyond the declared pool of 4 (last POST /v1/charges, 1 request each, open 1s). Idle connections beyond the declared pool are connections of pools the caller no longer reaches, e.g. a new client per call"},
		{"fds released only when the servers closed connections beyond the pool", FDLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns["payment"] = harness.ServerConnsAfter{Available: true, Open: 40, Held: []harness.HeldConns{{Reason: harness.HeldBeyondPool, Count: 40, Requests: 40}}}
			h.Leaks.BeforeIdleClose = &harness.HeldBeforeIdleClose{FDsMeasured: true, FDs: 180, Goroutines: 88}
		}, harness.StatusFail, 160, "160 more open file descriptors after teardown than at the baseline (180 vs 20), released only when the servers closed the 40 idle connections the client held beyond its declared pool"},
		{"goroutines ended only when the servers closed connections beyond the pool", GoroutineLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns["payment"] = harness.ServerConnsAfter{Available: true, Open: 40, Held: []harness.HeldConns{{Reason: harness.HeldBeyondPool, Count: 40, Requests: 40}}}
			h.Leaks.BeforeIdleClose = &harness.HeldBeforeIdleClose{FDsMeasured: true, FDs: 180, Goroutines: 88}
		}, harness.StatusFail, 88, "88 client goroutines still running after teardown, which ended only when the servers closed the 40 idle connections"},
		{"idle pool within the declared pool is no fd leak", FDLeak{}, func(h *harness.History) {
			h.Leaks.ServerConns["payment"] = harness.ServerConnsAfter{Available: true, IdleClosed: 4}
			h.Leaks.BeforeIdleClose = &harness.HeldBeforeIdleClose{FDsMeasured: true, FDs: 36, Goroutines: 8}
		}, harness.StatusPass, 1, "the servers closed 4 idle pooled connections"},
		{"fds stopped at the ceiling", FDLeak{}, func(h *harness.History) {
			h.StoppedEarly = &harness.EarlyStop{At: 1200 * time.Millisecond, Resource: harness.ResourceFDs, Above: 5100, Ceiling: 5000, Calls: 1300}
		}, harness.StatusFail, 5100, "the run was stopped at the ceiling after 1.2s and 1300 calls: 5100 open file descriptors above the baseline (ceiling 5000); the client piles them up; after teardown 1 above (21 vs 20)"},
		{"goroutines stopped at the ceiling", GoroutineLeak{}, func(h *harness.History) {
			h.StoppedEarly = &harness.EarlyStop{At: time.Second, Resource: harness.ResourceGoroutines, Above: 50001, Ceiling: 50000, Calls: 900}
		}, harness.StatusFail, 50001, "the run was stopped at the ceiling after 1s and 900 calls: 50001 goroutines above the baseline (ceiling 50000)"},
		{"the other leak checks say the run was stopped early", GoroutineLeak{}, func(h *harness.History) {
			h.StoppedEarly = &harness.EarlyStop{At: time.Second, Resource: harness.ResourceFDs, Above: 5100, Ceiling: 5000, Calls: 900}
		}, harness.StatusPass, 0, "no client goroutine left running after teardown (the run was stopped early at the fds ceiling after 1s and 900 calls: 5100 above the baseline, ceiling 5000)"},
		{"server conns say the run was stopped early", ServerConnLeak{}, func(h *harness.History) {
			h.StoppedEarly = &harness.EarlyStop{At: time.Second, Resource: harness.ResourceFDs, Above: 5100, Ceiling: 5000, Calls: 900}
		}, harness.StatusPass, 0, "(the run was stopped early at the fds ceiling"},
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
