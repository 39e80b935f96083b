package harness_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	envpkg "github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

func TestRunBaselineStdClientPassesEveryLeakCheck(t *testing.T) {
	env := newEmbeddedEnv(t)
	var progress []harness.Progress
	h, err := harness.Run(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, harnesstest.ShortSpec("baseline", 7), harness.WithProgress(func(p harness.Progress) { progress = append(progress, p) }))
	require.NoError(t, err)

	require.NotEmpty(t, h.Calls)
	assert.NotEmpty(t, progress, "progress is reported")
	assert.Equal(t, int64(7), h.Seed)
	assert.Equal(t, []string{fakeservers.Inventory, fakeservers.Payment, fakeservers.Notification}, h.Services)
	perOp := map[harness.Op]int{}
	for _, c := range h.Calls {
		perOp[c.Op]++
		require.True(t, c.OK(), "call %d %v: class %v status %d err %q", c.Seq, c.Op, c.Class, c.Status, h.ErrorText(c))
		require.Equal(t, harness.DigestOK, c.Digest, "call %d", c.Seq)
		require.LessOrEqual(t, c.Start, c.End)
		require.Positive(t, c.Bytes)
	}
	for _, op := range []harness.Op{harness.OpGetItem, harness.OpCreateCharge, harness.OpSendNotification} {
		assert.Positive(t, perOp[op], "op %v drawn", op)
	}

	// The server saw exactly the calls the history holds, by request id,
	// each once, and one charge per charged order.
	seen := map[string]int{}
	for _, name := range h.Services {
		truth := h.ServerAfterRun[name]
		require.True(t, truth.Available, "server truth of %s: %s", name, truth.Err)
		for _, r := range truth.Stats.Requests {
			seen[r.RequestID]++
		}
	}
	for _, c := range h.Calls {
		assert.Equal(t, 1, seen[h.RequestID(c.Seq)], "request id %s", h.RequestID(c.Seq))
		if c.Op == harness.OpCreateCharge {
			assert.Equal(t, 1, h.ServerAfterRun[fakeservers.Payment].Stats.Charges[h.OrderID(c.Seq)], "order %s", h.OrderID(c.Seq))
		}
	}

	require.NotEmpty(t, h.Samples)
	last := h.Samples[len(h.Samples)-1]
	assert.Equal(t, int64(len(h.Calls)), last.Done)
	assert.Len(t, last.ServerConns, 3)

	for _, v := range harness.Judge(h, append(check.Leaks(), check.NoHang{})...) {
		assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
	}
}

// A client with Do alone (a wrapper of a RoundTripper, a library type)
// cannot close its idle connections: the servers close them for it, and
// its idle pool is no leak.
func TestRunDoOnlyClientPassesEveryLeakCheck(t *testing.T) {
	for _, tt := range []struct {
		name  string
		http2 bool
		proto string
	}{
		{"HTTP/1.1", false, fakeservers.ProtoHTTP1},
		{"HTTP/2 allowed", true, fakeservers.ProtoH2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newEmbeddedEnv(t, envpkg.WithHTTP2(tt.http2))
			spec := harnesstest.ShortSpec("baseline", 7)
			if tt.http2 {
				spec.Protocol = harness.ProtocolHTTP2 // the services offer HTTP/1.1 unless asked
			}
			h, err := harness.Run(harnesstest.Ctx(t), env, doOnlyFactory(t), spec)
			require.NoError(t, err)
			require.NotEmpty(t, h.Calls)
			for _, c := range h.Calls {
				require.True(t, c.OK(), "call %d: class %v status %d err %q", c.Seq, c.Class, c.Status, h.ErrorText(c))
			}
			assert.Empty(t, h.Teardown, "the client has nothing to call at teardown")

			idle := 0
			for _, name := range h.Services {
				sc := h.Leaks.ServerConns[name]
				assert.False(t, sc.ClientClosedIdle, name)
				assert.Zero(t, sc.Open, "%s: nothing held: %+v", name, sc.Held)
				assert.LessOrEqual(t, sc.IdleClosed, cmp.Or(h.Profile.For(name).MaxConns, harness.UndeclaredPoolBound(h.Workload)), name)
				idle += sc.IdleClosed
				for _, c := range h.ServerAfterRun[name].Stats.Connections {
					assert.Equal(t, tt.proto, c.Protocol)
				}
			}
			assert.Positive(t, idle, "the servers closed the client's idle pool")
			assert.Nil(t, h.Leaks.BeforeIdleClose, "no service had more idle connections than its pool")
			for _, v := range harness.Judge(h, check.Leaks()...) {
				assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
				t.Log(v)
			}
			assert.Contains(t, findVerdict(t, harness.Judge(h, check.ServerConnLeak{}), check.IDLeakServerConns).Reason, "idle pooled connections the client kept for reuse")
		})
	}
}

func TestRunLeakyClientsFailTheRightCheck(t *testing.T) {
	tests := []struct {
		name         string
		factory      func(testing.TB) harness.ClientFactory
		mustFail     string
		reasonHas    []string
		mustPass     []string
		mustAlsoFail []string
		maxCalls     int
		workers      int
		tolerateFD   bool
		finder       string // how the leaked goroutines must have been found
	}{
		{
			name:      "goroutine per call",
			factory:   goroutineLeakerFactory,
			mustFail:  "leak.goroutines",
			reasonHas: []string{"client goroutines still running after teardown", "found by its label", "harness_test.(*goroutineLeaker).Do.func1"},
			mustPass:  []string{"leak.server_connections", "timeout.no_hang"},
			maxCalls:  60,
			workers:   3,
			finder:    harness.LeakFinderLabels,
		},
		{
			// Goroutines started by a goroutine the client had before the
			// run carry no run label: goleak must find them.
			name:      "goroutine per call from a pre-existing spawner",
			factory:   spawnerLeakerFactory,
			mustFail:  "leak.goroutines",
			reasonHas: []string{"40 client goroutines still running after teardown, e.g.", "harness_test.(*spawnerLeaker).park"},
			mustPass:  []string{"leak.server_connections", "timeout.no_hang"},
			maxCalls:  40,
			workers:   2,
			finder:    harness.LeakFinderGoleak,
		},
		{
			name:      "discarded bodies never closed",
			factory:   bodyDropperFactory,
			mustFail:  "leak.server_connections",
			reasonHas: []string{"connections still open on the servers", "answered, yet open after the client closed its idle connections (last ", "never read to the end or closed"},
			mustPass:  []string{"timeout.no_hang"},
			maxCalls:  30,
			workers:   2,
		},
		{
			// To the servers its dropped connections look like an idle
			// pool, within the declared size: they close them. The client
			// never reads them, so never notices: the sockets and the
			// read loops stay.
			name:         "discarded bodies never closed, Do alone",
			factory:      doOnlyBodyDropperFactory,
			mustFail:     "leak.goroutines",
			reasonHas:    []string{"client goroutines still running after teardown", "net/http.(*persistConn).readLoop"},
			mustPass:     []string{"leak.server_connections", "timeout.no_hang"},
			mustAlsoFail: []string{"leak.fds"},
			maxCalls:     30,
			workers:      2,
		},
		{
			// Idle connections, but far more than the declared pool (16
			// per service): the servers close them, and the sockets and
			// read loops they held count as the client's leak.
			name:         "a new client per call",
			factory:      clientPerCallFactory,
			mustFail:     "leak.server_connections",
			reasonHas:    []string{"idle beyond the declared pool of 16", "1 request each", "a new client per call"},
			mustPass:     []string{"timeout.no_hang"},
			mustAlsoFail: []string{"leak.fds", "leak.goroutines"},
			maxCalls:     80,
			workers:      4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEmbeddedEnv(t)
			spec := harnesstest.ShortSpec("leaky", 11)
			spec.Profile.Default.MaxConns = 16 // the pool the idle connections are sorted by
			spec.Workload.MaxCalls = tt.maxCalls
			spec.Workload.Workers = tt.workers
			spec.Workload.Duration = 5 * time.Second
			h, err := harness.Run(harnesstest.Ctx(t), env, tt.factory(t), spec, harness.WithSettle(500*time.Millisecond))
			require.NoError(t, err)
			require.Len(t, h.Calls, tt.maxCalls)

			vs := harness.Judge(h, append(check.Leaks(), check.NoHang{})...)
			v := findVerdict(t, vs, tt.mustFail)
			require.Equal(t, harness.StatusFail, v.Status, "%s", v)
			for _, s := range tt.reasonHas {
				assert.Contains(t, v.Reason, s)
			}
			assert.Contains(t, v.String(), "scenario=leaky seed=11")
			if tt.finder != "" {
				assert.Equal(t, tt.finder, h.Leaks.LeakFinder)
			}
			t.Log(v)
			for _, id := range tt.mustPass {
				pv := findVerdict(t, vs, id)
				assert.Equal(t, harness.StatusPass, pv.Status, "%s", pv)
			}
			for _, id := range tt.mustAlsoFail {
				fv := findVerdict(t, vs, id)
				assert.Equal(t, harness.StatusFail, fv.Status, "%s", fv)
			}
		})
	}
}

func TestRunBlockingClientIsReportedHungAndTheRunEnds(t *testing.T) {
	env := newEmbeddedEnv(t)
	spec := harnesstest.ShortSpec("blackhole-client", 3)
	spec.Workload.Duration = 300 * time.Millisecond
	spec.Workload.Workers = 2
	spec.Profile = harness.Profile{Default: harness.Contract{RequestTimeout: 100 * time.Millisecond}}

	start := time.Now()
	h, err := harness.Run(harnesstest.Ctx(t), env, blockingFactory(t), spec, harness.WithSettle(200*time.Millisecond))
	took := time.Since(start)
	require.NoError(t, err)

	wantWatchdog := 100*time.Millisecond*2 + time.Second
	assert.Equal(t, wantWatchdog, h.Watchdog)
	// Duration + watchdog + grace, plus teardown/settle/goleak; generous for a noisy machine.
	assert.Less(t, took, spec.Workload.Duration+wantWatchdog+10*time.Second)
	require.Len(t, h.Calls, 2, "each worker's first call hangs past the end of the run")
	for _, c := range h.Calls {
		assert.Equal(t, harness.ClassHang, c.Class)
		assert.GreaterOrEqual(t, c.Latency(), wantWatchdog)
		assert.Contains(t, h.ErrorText(c), "watchdog")
	}
	assert.Equal(t, 2, h.AbandonedAtEnd)
	v := check.NoHang{}.Judge(h)
	assert.Equal(t, harness.StatusFail, v.Status)
	assert.Contains(t, v.Reason, "2 of 2 calls hung")
	g := check.GoroutineLeak{}.Judge(h)
	assert.Equal(t, harness.StatusFail, g.Status, "the abandoned calls are the client's leak")
	assert.Contains(t, g.Reason, "blockingClient")
}

func TestRunSameSeedReplaysTheSameCalls(t *testing.T) {
	env := newEmbeddedEnv(t)
	run := func(seed int64) *harness.History {
		require.NoError(t, env.Reset(harnesstest.Ctx(t), seed))
		spec := harnesstest.ShortSpec("replay", seed)
		spec.Workload.MaxCalls = 40
		spec.Workload.Duration = 10 * time.Second
		h, err := harness.Run(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, spec)
		require.NoError(t, err)
		require.Len(t, h.Calls, 40)
		return h
	}
	type call struct {
		op  harness.Op
		rid string
	}
	bySeq := func(h *harness.History) map[uint32]call {
		out := map[uint32]call{}
		for _, c := range h.Calls {
			out[c.Seq] = call{c.Op, h.RequestID(c.Seq)}
		}
		return out
	}
	a, b, other := run(42), run(42), run(43)
	assert.Equal(t, bySeq(a), bySeq(b))
	assert.NotEqual(t, bySeq(a), bySeq(other))

	// The server saw the same request ids for the same items.
	paths := func(h *harness.History) map[string]string {
		out := map[string]string{}
		for _, r := range h.ServerAfterRun[fakeservers.Payment].Stats.Requests {
			out[r.RequestID] = r.OrderID
		}
		return out
	}
	assert.Equal(t, paths(a), paths(b))
}

func TestRunOpenLoopDropsCallsAtTheInFlightCap(t *testing.T) {
	env := newEmbeddedEnv(t)
	spec := harnesstest.ShortSpec("open", 5)
	spec.Workload = harness.Workload{Mode: harness.OpenLoop, Duration: 800 * time.Millisecond, Rate: 100, MaxInFlight: 2, Mix: harness.Mix{Inventory: 1}}
	factory := func(svc harness.Service) (harness.Client, error) {
		return &slowClient{inner: &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(svc, 4)}, delay: 100 * time.Millisecond}, nil
	}
	h, err := harness.Run(harnesstest.Ctx(t), env, factory, spec, harness.WithSampleInterval(20*time.Millisecond))
	require.NoError(t, err)

	assert.Positive(t, h.Dropped)
	// ~80 calls are due; at most 2 in flight for 100ms each lets ~16 through.
	assert.Less(t, len(h.Calls), 40)
	assert.Greater(t, int(h.Dropped)+len(h.Calls), 40)
	for _, s := range h.Samples {
		assert.LessOrEqual(t, s.InFlight, int32(2))
	}
	assert.Equal(t, []string{fakeservers.Inventory}, h.Services)
	for _, c := range h.Calls {
		assert.Equal(t, harness.OpGetItem, c.Op)
		assert.True(t, c.OK(), "class %v status %d", c.Class, c.Status)
	}
}

func TestRunNemesisScheduleIsExecutedAndRecorded(t *testing.T) {
	env := newEmbeddedEnv(t)
	spec := harnesstest.ShortSpec("http-503", 9)
	spec.Workload.Duration = 900 * time.Millisecond
	spec.Workload.Mix = harness.Mix{Inventory: 1}
	spec.Steps = []harness.Step{
		{At: 10 * time.Second, Label: "never reached", Action: harness.Action{Kind: harness.ActionClearHTTPFaults, Service: fakeservers.Inventory}},
		{At: 200 * time.Millisecond, Label: "503 on inventory", Action: harness.Action{Kind: harness.ActionSetHTTPFaults, Service: fakeservers.Inventory,
			HTTPFaults: []fakeservers.Fault{{Name: "unavailable", Kind: fakeservers.FaultStatus, Status: http.StatusServiceUnavailable}}}},
		{At: 500 * time.Millisecond, Label: "clear", Action: harness.Action{Kind: harness.ActionClearHTTPFaults, Service: fakeservers.Inventory}},
	}
	t.Cleanup(func() { _ = env.Reset(context.Background(), harness.DefaultSeed) })
	h, err := harness.Run(harnesstest.Ctx(t), env, harnesstest.StdClientFactory, spec)
	require.NoError(t, err)

	require.Len(t, h.Steps, 3)
	assert.Equal(t, "503 on inventory", h.Steps[0].Step.Label)
	assert.Empty(t, h.Steps[0].Err)
	assert.GreaterOrEqual(t, h.Steps[0].Started, 200*time.Millisecond)
	assert.GreaterOrEqual(t, h.Steps[0].Ended, h.Steps[0].Started)
	assert.Empty(t, h.Steps[1].Err)
	assert.GreaterOrEqual(t, h.Steps[1].Started, 500*time.Millisecond)
	assert.Contains(t, h.Steps[2].Err, "not run")

	statuses := map[int16]int{}
	for _, c := range h.Calls {
		statuses[c.Status]++
		if c.Status == http.StatusServiceUnavailable {
			assert.GreaterOrEqual(t, time.Duration(c.End), h.Steps[0].Started)
			assert.LessOrEqual(t, time.Duration(c.Start), h.Steps[1].Ended)
		}
	}
	assert.Positive(t, statuses[http.StatusOK])
	assert.Positive(t, statuses[http.StatusServiceUnavailable])
}

func TestRunRejectsBadInput(t *testing.T) {
	env := newEmbeddedEnv(t)
	factoryErr := errors.New("no credentials")
	tests := []struct {
		name    string
		env     harness.Environment
		factory harness.ClientFactory
		mutate  func(*harness.RunSpec)
		want    error
	}{
		{"no environment", nil, harnesstest.StdClientFactory, nil, harness.ErrInvalidRun},
		{"no factory", env, nil, nil, harness.ErrInvalidRun},
		{"bad mode", env, harnesstest.StdClientFactory, func(s *harness.RunSpec) { s.Workload.Mode = "sideways" }, harness.ErrInvalidWorkload},
		{"open loop without rate", env, harnesstest.StdClientFactory, func(s *harness.RunSpec) { s.Workload = harness.Workload{Mode: harness.OpenLoop, Duration: time.Second} }, harness.ErrInvalidWorkload},
		{"no duration", env, harnesstest.StdClientFactory, func(s *harness.RunSpec) { s.Workload.Duration = 0 }, harness.ErrInvalidWorkload},
		{"factory fails", env, func(harness.Service) (harness.Client, error) { return nil, factoryErr }, nil, factoryErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := harnesstest.ShortSpec("bad", 1)
			if tt.mutate != nil {
				tt.mutate(&spec)
			}
			h, err := harness.Run(harnesstest.Ctx(t), tt.env, tt.factory, spec)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, h)
		})
	}
}

func TestRunCanceledContextStillTearsDownAndReturnsTheHistory(t *testing.T) {
	env := newEmbeddedEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	spec := harnesstest.ShortSpec("cancel", 2)
	spec.Workload.Duration = time.Minute
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	h, err := harness.Run(ctx, env, harnesstest.StdClientFactory, spec)
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, h)
	assert.Less(t, time.Since(start), 20*time.Second)
	assert.NotEmpty(t, h.Calls)
	assert.NotEmpty(t, h.Teardown, "clients are torn down")
	assert.Equal(t, harness.StatusPass, check.ServerConnLeak{}.Judge(h).Status)
}

func TestHistoryRoundTripRecomputesTheSameVerdicts(t *testing.T) {
	env := newEmbeddedEnv(t)
	spec := harnesstest.ShortSpec("roundtrip", 99)
	spec.Workload.MaxCalls = 30
	spec.Workload.Duration = 5 * time.Second
	spec.Steps = []harness.Step{{At: time.Hour, Label: "late", Action: harness.Action{Kind: harness.ActionClearHTTPFaults, Service: fakeservers.Payment}}}
	h, err := harness.Run(harnesstest.Ctx(t), env, goroutineLeakerFactory(t), spec, harness.WithSettle(300*time.Millisecond))
	require.NoError(t, err)

	checks := append(check.Leaks(), check.NoHang{})
	before := harness.Judge(h, checks...)
	var buf bytes.Buffer
	require.NoError(t, h.Save(&buf))
	loaded, err := harness.LoadHistory(&buf)
	require.NoError(t, err)

	assert.Equal(t, before, harness.Judge(loaded, checks...))
	assert.Equal(t, h.Calls, loaded.Calls)
	assert.Equal(t, h.Leaks, loaded.Leaks)
	assert.Equal(t, h.Steps, loaded.Steps)
	assert.Equal(t, h.Samples, loaded.Samples)
	assert.Equal(t, findVerdict(t, before, "leak.goroutines").Status, harness.StatusFail, "the round trip carries a failing verdict too")
}

// A client that piles up descriptors or goroutines is stopped at the
// ceiling, well before the workload's end, and still torn down and
// measured: the leak verdicts say so.
func TestRunStopsEarlyAtACeiling(t *testing.T) {
	for _, tt := range []struct {
		name     string
		factory  func(testing.TB) harness.ClientFactory
		opt      harness.RunOption
		resource harness.Resource
		ceiling  int
		check    string
	}{
		{"descriptors", fdLeakerFactory, harness.WithFDCeiling(300), harness.ResourceFDs, 300, check.IDLeakFDs},
		{"goroutines", goroutineLeakerFactory, harness.WithGoroutineCeiling(300), harness.ResourceGoroutines, 300, check.IDLeakGoroutines},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newEmbeddedEnv(t)
			spec := harnesstest.ShortSpec("ceiling", 13)
			spec.Workload.Duration = 20 * time.Second
			start := time.Now()
			h, err := harness.Run(harnesstest.Ctx(t), env, tt.factory(t), spec, harness.WithSampleInterval(20*time.Millisecond), tt.opt)
			require.NoError(t, err)
			// The leaker passes 300 within a few hundred calls; the 20s
			// workload is never run out, whatever the machine's speed.
			assert.Less(t, time.Since(start), 15*time.Second)

			es := h.StoppedEarly
			require.NotNil(t, es, "the run must stop at the ceiling")
			assert.Equal(t, tt.resource, es.Resource)
			assert.Equal(t, tt.ceiling, es.Ceiling)
			assert.Greater(t, es.Above, tt.ceiling)
			assert.Less(t, es.At, 15*time.Second)
			assert.Positive(t, es.Calls)
			assert.LessOrEqual(t, es.Calls, int64(len(h.Calls)), "calls in flight at the stop still finish and are recorded")
			assert.NotEmpty(t, h.Teardown, "the client is torn down as usual")

			vs := harness.Judge(h, check.Leaks()...)
			v := findVerdict(t, vs, tt.check)
			assert.Equal(t, harness.StatusFail, v.Status, "%s", v)
			assert.Equal(t, float64(es.Above), v.Measured)
			assert.Contains(t, v.Reason, "the run was stopped at the ceiling")
			t.Log(v)
			for _, other := range vs {
				if other.Check != tt.check {
					assert.Contains(t, other.Reason, "the run was stopped early at the "+string(tt.resource)+" ceiling", "%s", other)
				}
			}

			var buf bytes.Buffer
			require.NoError(t, h.Save(&buf))
			loaded, err := harness.LoadHistory(&buf)
			require.NoError(t, err)
			assert.Equal(t, es, loaded.StoppedEarly)
		})
	}
}
