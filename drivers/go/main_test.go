package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// envServe makes the test binary the driver itself, so the benchmark
// drives through the protocol exactly the client it also calls in process.
const envServe = "POOLPROOF_GO_DRIVER_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(envServe) != "" {
		os.Exit(serve(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// benchContract is the contract of both sides: a pool as large as the
// concurrency, so neither waits for a connection.
var benchContract = contract{MaxConns: 16, PoolWait: 5 * time.Second, RequestTimeout: 10 * time.Second}

const concurrency = 16

type setup struct {
	svc      harness.Service
	inProc   *client
	viaProto *driver.Process
}

// newSetup starts a server and, for it, the client in process and the
// same client behind the protocol.
func newSetup(tb testing.TB, server func(testing.TB) (baseURL string, caPEM []byte)) setup {
	tb.Helper()
	baseURL, caPEM := server(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caFile := filepath.Join(tb.TempDir(), "ca.pem")
	require.NoError(tb, os.WriteFile(caFile, caPEM, 0o600))

	svc := harness.Service{Name: fakeservers.Inventory, BaseURL: baseURL, CAPEM: caPEM}
	inProc, err := newClient(caFile, benchContract)
	require.NoError(tb, err)
	tb.Cleanup(inProc.http.CloseIdleConnections)

	c := harness.Contract{MaxConns: benchContract.MaxConns, PoolWait: benchContract.PoolWait, RequestTimeout: benchContract.RequestTimeout}
	p, err := driver.Start(ctx, []string{os.Args[0]}, []harness.Service{svc}, harness.Profile{Default: c}, driver.WithEnv(envServe+"=1"))
	require.NoError(tb, err)
	tb.Cleanup(func() { assert.NoError(tb, p.Close()) })
	return setup{svc: svc, inProc: inProc, viaProto: p}
}

// fakeService starts the inventory fake service the certification calls
// (TLS, HTTP/1.1, no fault, no proxy).
func fakeService(tb testing.TB) (string, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := fakeservers.Start(ctx, fakeservers.Config{Service: fakeservers.Inventory, TLS: true, DisableHTTP2: true})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = srv.Close() })
	ca, err := fakeservers.NewAdminClient(srv.AdminURL()).CAPEM(ctx)
	require.NoError(tb, err)
	return srv.URL(), ca
}

// minimalServer answers every request at once with a fixed body the size
// of an item's and its digest: with next to no server work, the
// protocol's cost is as visible as it gets.
func minimalServer(tb testing.TB) (string, []byte) {
	tb.Helper()
	body := bytes.Repeat([]byte("x"), 600)
	sum := sha256.Sum256(body)
	digest := fakeservers.DigestPrefix + hex.EncodeToString(sum[:])
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(fakeservers.HeaderBodyDigest, digest)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func (s setup) request(n int64) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, s.svc.BaseURL+"/v1/items/"+fmt.Sprint(n%100), nil)
	req.Header.Set("X-Request-ID", fmt.Sprintf("bench-%d", n))
	return req
}

// inProcess makes one call the way the harness would on the client itself.
func (s setup) inProcess(n int64) error {
	status, _, _, _, err := s.inProc.do(s.request(n))
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	return err
}

// throughProtocol makes the same call through the driver.
func (s setup) throughProtocol(n int64) error {
	resp, err := s.viaProto.Do(s.request(n))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// run makes calls from concurrency goroutines and returns how long they
// took.
func run(tb testing.TB, calls int, call func(n int64) error) time.Duration {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		fail atomic.Pointer[error]
	)
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(calls); n = next.Add(1) {
				if err := call(n); err != nil {
					fail.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := fail.Load(); err != nil {
		tb.Fatal(*err)
	}
	return took
}

func TestTheDriverAnswersLikeTheClientInProcess(t *testing.T) {
	s := newSetup(t, fakeService)
	run(t, 200, s.inProcess)
	run(t, 200, s.throughProtocol)

	resp, err := s.viaProto.Do(s.request(7))
	require.NoError(t, err)
	rep := resp.Body.(harness.ReportedBody).BodyReport()
	status, header, n, sum, err := s.inProc.do(s.request(7))
	require.NoError(t, err)
	assert.Equal(t, status, resp.StatusCode)
	assert.Equal(t, header.Get(fakeservers.HeaderBodyDigest), resp.Header.Get(fakeservers.HeaderBodyDigest))
	assert.Equal(t, harness.BodyReport{Len: n, SHA256: sum}, rep, "the driver reports the body it read")
	assert.Equal(t, fakeservers.DigestPrefix+hex.EncodeToString(sum[:]), resp.Header.Get(fakeservers.HeaderBodyDigest), "which is the body the server sent")
}

// BenchmarkDriverOverhead measures, in one run, the same *http.Client in
// process and through the protocol at 16 concurrent calls, against the
// fake service a certification calls and against a server that does next
// to nothing (where the protocol's cost shows most), and reports:
//
//   - driver/inprocess: the ratio of their calls per second (goal >= 0.5);
//   - driver/inprocess-cpu: the ratio of the CPU each spends per call, this
//     process and the driver's together. On a machine busy with other work
//     the wall-clock ratio says more of the machine's scheduler than of
//     the protocol (a second process gets a second share of the CPU); CPU
//     per call does not depend on it, and is what bounds calls per second
//     once the CPUs are saturated.
func BenchmarkDriverOverhead(b *testing.B) {
	for _, server := range []struct {
		name  string
		start func(testing.TB) (string, []byte)
	}{{"fake-service", fakeService}, {"minimal-server", minimalServer}} {
		b.Run(server.name, func(b *testing.B) {
			s := newSetup(b, server.start)
			// Warm both pools and both sides' code paths first.
			run(b, 500, s.inProcess)
			run(b, 500, s.throughProtocol)
			// The two sides alternate in rounds, so that a machine busy
			// with something else for a while slows both alike.
			const rounds = 10
			var (
				inProcess, throughProtocol       time.Duration
				inProcessCPU, throughProtocolCPU time.Duration
			)
			measure := func(wall, cpu *time.Duration, calls int, call func(int64) error) {
				before := cpuTime(b, s.viaProto.PID())
				*wall += run(b, calls, call)
				*cpu += cpuTime(b, s.viaProto.PID()) - before
			}
			b.ResetTimer()
			for i := range rounds {
				calls := (b.N + rounds - 1) / rounds
				if i%2 == 0 {
					measure(&inProcess, &inProcessCPU, calls, s.inProcess)
					measure(&throughProtocol, &throughProtocolCPU, calls, s.throughProtocol)
				} else {
					measure(&throughProtocol, &throughProtocolCPU, calls, s.throughProtocol)
					measure(&inProcess, &inProcessCPU, calls, s.inProcess)
				}
			}
			b.StopTimer()
			calls := float64((b.N + rounds - 1) / rounds * rounds)
			b.ReportMetric(calls/inProcess.Seconds(), "inprocess-calls/s")
			b.ReportMetric(calls/throughProtocol.Seconds(), "driver-calls/s")
			b.ReportMetric(inProcess.Seconds()/throughProtocol.Seconds(), "driver/inprocess")
			b.ReportMetric(float64(inProcessCPU.Microseconds())/calls, "inprocess-cpu-us/call")
			b.ReportMetric(float64(throughProtocolCPU.Microseconds())/calls, "driver-cpu-us/call")
			b.ReportMetric(inProcessCPU.Seconds()/throughProtocolCPU.Seconds(), "driver/inprocess-cpu")
		})
	}
}

// cpuTime is the CPU time spent so far by this process and the driver's.
func cpuTime(tb testing.TB, driverPID int) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", driverPID))
	if err != nil {
		tb.Skipf("no /proc/<pid>/stat to read the driver's CPU time: %v", err)
	}
	// utime and stime are fields 14 and 15, in clock ticks (100 a second
	// on Linux), after the command name in parentheses.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	require.NoError(tb, errors.Join(err1, err2))
	return self + time.Duration(utime+stime)*10*time.Millisecond
}
