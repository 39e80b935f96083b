package harness_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

// benchEnv is one plain-HTTP fake inventory service without Toxiproxy, so
// that the benchmark measures the harness, not the proxy.
type benchEnv struct{ srv *fakeservers.Server }

func (e *benchEnv) Name() string { return "bench" }
func (e *benchEnv) Services() []harness.Service {
	return []harness.Service{{Name: fakeservers.Inventory, BaseURL: e.srv.URL()}}
}
func (e *benchEnv) Faults() harness.Faults { return nil }
func (e *benchEnv) Observe(_ context.Context, service string) (fakeservers.Stats, error) {
	if service != fakeservers.Inventory {
		return fakeservers.Stats{}, harness.ErrNoServerTruth
	}
	return e.srv.Stats(), nil
}
func (e *benchEnv) Reset(_ context.Context, seed int64) error { e.srv.ResetSeed(seed); return nil }
func (e *benchEnv) GoroutineIgnores() []string                { return env.GoroutineIgnores() }
func (e *benchEnv) Close() error                              { return e.srv.Close() }

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := fakeservers.Start(ctx, fakeservers.Config{Service: fakeservers.Inventory})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return &benchEnv{srv: srv}
}

const benchConcurrency = 8

func benchClient(svc harness.Service) (harness.Client, error) {
	return &http.Client{Timeout: 5 * time.Second, Transport: harnesstest.StdTransport(svc, benchConcurrency)}, nil
}

// bareLoop drives client with n goroutines for d, each reading and closing
// every body, and returns the calls completed.
func bareLoop(client harness.Client, url string, n int, d time.Duration) int64 {
	var (
		calls atomic.Int64
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for i := 0; time.Now().Before(deadline); i++ {
				req, err := http.NewRequest(http.MethodGet, url+strconv.Itoa((w*7919+i)%100), nil)
				if err != nil {
					panic(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	return calls.Load()
}

// heldBytes is the heap that keeping v alive costs, measured as the drop
// in live heap when it is released.
func heldBytes(keep func() any) uint64 {
	v := keep()
	runtime.GC()
	var with, without runtime.MemStats
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(v)
	v = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	if with.HeapAlloc < without.HeapAlloc {
		return 0
	}
	return with.HeapAlloc - without.HeapAlloc
}

// BenchmarkRunnerVsBareLoop compares, in one run, the request rate of the
// workload runner (recording, sampling, digest checks, watchdog) with a bare
// loop driving the same client at the same concurrency against the same
// fake service, alternating the two to cancel drift. It reports both rates,
// their ratio (goal >= 0.9) and the history's bytes per call (goal <= ~200
// for the call records; the server-side truth the history also carries is
// reported separately).
func BenchmarkRunnerVsBareLoop(b *testing.B) {
	env := newBenchEnv(b)
	svc := env.Services()[0]
	url := svc.BaseURL + "/v1/items/sku-"
	const phase = 2 * time.Second
	for range b.N {
		var bareCalls, runnerCalls int64
		var bareTime, runnerTime time.Duration
		var last *harness.History
		for round := range 2 {
			env.srv.Reset()
			c, _ := benchClient(svc)
			start := time.Now()
			bareCalls += bareLoop(c, url, benchConcurrency, phase)
			bareTime += time.Since(start)
			c.(*http.Client).CloseIdleConnections()

			env.srv.Reset()
			spec := harness.RunSpec{Scenario: "bench", Seed: int64(round), Profile: harness.DefaultProfile(),
				Workload: harness.Workload{Mode: harness.ClosedLoop, Workers: benchConcurrency, Duration: phase, Mix: harness.Mix{Inventory: 1}}}
			h, err := harness.Run(context.Background(), env, benchClient, spec, harness.WithSettle(time.Second))
			if err != nil {
				b.Fatal(err)
			}
			runnerCalls += int64(len(h.Calls))
			runnerTime += h.Elapsed
			for _, call := range h.Calls {
				if !call.OK() {
					b.Fatalf("call %d failed: %v %s", call.Seq, call.Class, h.ErrorText(call))
				}
			}
			last = h
		}
		bareRate := float64(bareCalls) / bareTime.Seconds()
		runnerRate := float64(runnerCalls) / runnerTime.Seconds()
		b.ReportMetric(bareRate, "bare_req/s")
		b.ReportMetric(runnerRate, "runner_req/s")
		b.ReportMetric(runnerRate/bareRate, "runner/bare")

		n := float64(len(last.Calls))
		callsOnly := heldBytes(func() any {
			calls, texts := last.Calls, last.ErrorTexts
			return &harness.History{Calls: append([]harness.CallRecord(nil), calls...), ErrorTexts: append([]string(nil), texts...)}
		})
		// As loaded from JSON, every string is the history's own (in
		// memory, the server-side truth may share strings with the server).
		var saved bytes.Buffer
		if err := last.Save(&saved); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(saved.Len())/n, "json_B/call")
		loaded := heldBytes(func() any {
			h, err := harness.LoadHistory(&saved)
			if err != nil {
				b.Fatal(err)
			}
			return h
		})
		whole := heldBytes(func() any { h := last; last = nil; return h })
		b.ReportMetric(float64(callsOnly)/n, "calls_B/call")
		b.ReportMetric(float64(whole)/n, "history_B/call")
		b.ReportMetric(float64(loaded)/n, "loaded_history_B/call")
	}
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// BenchmarkWrkAgainstFakeService reports what wrk reaches against the same
// fake service, for scale (Debian: apt-get install -y wrk).
func BenchmarkWrkAgainstFakeService(b *testing.B) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not installed (Debian: apt-get install -y wrk); skipping the wrk baseline")
	}
	env := newBenchEnv(b)
	url := env.Services()[0].BaseURL + "/v1/items/sku-1"
	for range b.N {
		env.srv.Reset()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, path, "-t", "2", "-c", strconv.Itoa(benchConcurrency), "-d", "3s", url).CombinedOutput()
		cancel()
		if err != nil {
			b.Fatalf("wrk: %v\n%s", err, out)
		}
		m := wrkRate.FindSubmatch(out)
		if m == nil {
			b.Fatalf("no Requests/sec in wrk output:\n%s", out)
		}
		rate, _ := strconv.ParseFloat(string(m[1]), 64)
		b.ReportMetric(rate, "wrk_req/s")
	}
}
