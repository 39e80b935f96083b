package runmetrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

func applied(a harness.Action) harness.StepRecord {
	return harness.StepRecord{Step: harness.Step{Action: a}, Outcome: harness.StepApplied}
}

func TestMetricsFollowTheRun(t *testing.T) {
	m := New()
	m.RunStarted("latency-spike", []string{fakeservers.Inventory, fakeservers.Payment})
	m.CallRecorded(harness.CallRecord{Start: 0, End: int64(20 * time.Millisecond), Service: harness.ServiceInventory, Op: harness.OpGetItem, Status: 200, Digest: harness.DigestOK})
	m.CallRecorded(harness.CallRecord{Service: harness.ServiceInventory, Op: harness.OpGetItem, Class: harness.ClassReset})
	m.CallRecorded(harness.CallRecord{Service: harness.ServicePayment, Op: harness.OpCreateCharge, Status: 503})
	m.Sampled(harness.Sample{InFlight: 5, ServerConns: []int32{4, -1}})
	m.StepDone(applied(harness.AddToxic(fakeservers.Inventory, harness.Latency("spike", harness.Downstream, time.Second, 0))))
	m.StepDone(applied(harness.SetHTTPFaults(fakeservers.Payment, fakeservers.Fault{Name: "storm", Kind: fakeservers.FaultStatus, Status: 503})))
	m.StepDone(harness.StepRecord{Step: harness.Step{Action: harness.DisableProxy(fakeservers.Payment)}, Outcome: harness.StepFailed})

	assert.Equal(t, 2.0, testutil.ToFloat64(m.calls.WithLabelValues("inventory", "get_item")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("payment", "create_charge")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("inventory", "reset")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("payment", classHTTPStatus)))
	assert.Equal(t, 5.0, testutil.ToFloat64(m.inFlight))
	assert.Equal(t, 4.0, testutil.ToFloat64(m.serverConns.WithLabelValues("inventory")))
	assert.Equal(t, 1, testutil.CollectAndCount(m.serverConns), "payment was not read at the sample: no value")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.faults.WithLabelValues("inventory", "toxic:spike")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.faults.WithLabelValues("payment", "http:storm")))
	assert.Equal(t, 2, testutil.CollectAndCount(m.faults), "the failed step holds no fault")
	assert.Equal(t, len(fakeservers.Services), testutil.CollectAndCount(m.latency), "a histogram per service, from the start")

	m.StepDone(applied(harness.RemoveToxic(fakeservers.Inventory, "spike")))
	m.StepDone(applied(harness.ClearHTTPFaults(fakeservers.Payment)))
	assert.Equal(t, 0, testutil.CollectAndCount(m.faults), "removed and cleared faults are gone")

	m.StepDone(applied(harness.DisableProxy(fakeservers.Inventory)))
	m.RunStarted("restart", []string{fakeservers.Inventory})
	assert.Equal(t, 0, testutil.CollectAndCount(m.faults), "a new run starts on a reset environment")
	assert.Equal(t, 1, testutil.CollectAndCount(m.scenario), "one scenario at a time")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.scenario.WithLabelValues("restart")))
}

func TestCheckLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9464", "localhost:0", "[::1]:9464", "127.0.0.2:1"} {
		assert.NoError(t, CheckLoopback(addr), addr)
	}
	for _, addr := range []string{":9464", "0.0.0.0:9464", "[::]:9464", "10.0.0.1:9464", "example.com:80"} {
		assert.ErrorIs(t, CheckLoopback(addr), ErrNotLoopback, addr)
	}
	assert.Error(t, CheckLoopback("9464"))
}

func TestServeStopsListeningAtClose(t *testing.T) {
	srv, err := Serve("127.0.0.1:0", New())
	require.NoError(t, err)
	addr := srv.Addr()
	require.NoError(t, srv.Close())
	again, err := Serve(addr, New()) // the port is free again
	require.NoError(t, err)
	require.NoError(t, again.Close())
	_, err = Serve("0.0.0.0:0", New())
	assert.ErrorIs(t, err, ErrNotLoopback)
}

// BenchmarkCallRecorded is the observer's cost per recorded call, the whole
// of what -metrics-addr adds to the hot path.
func BenchmarkCallRecorded(b *testing.B) {
	m := New()
	m.RunStarted("bench", []string{fakeservers.Inventory})
	ok := harness.CallRecord{End: int64(3 * time.Millisecond), Service: harness.ServiceInventory, Op: harness.OpGetItem, Status: 200, Digest: harness.DigestOK}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.CallRecorded(ok)
		}
	})
}
