package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness/runmetrics"
)

// freeLoopbackAddr returns a loopback address whose port was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// scrape reads the metrics at addr; an error when nothing answers.
func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// sum adds the values of every series of a family whose labels include want.
func sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) (total float64, found bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
series:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue series
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total, found
}

func TestCertifyServesTheRunsMetricsWhileItRuns(t *testing.T) {
	addr := freeLoopbackAddr(t)
	var (
		out, errOut bytes.Buffer
		code        int
		wg          sync.WaitGroup
		done        = make(chan struct{})
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		code = dispatch(ctx, []string{"certify", "-scenario", "latency-spike", "-report", "-", "-metrics-addr", addr}, &out, &errOut)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	// Scrape until the run has made calls and the samplers have read the
	// server's connections; the run lasts seconds, the poll is bounded.
	var fams map[string]*dto.MetricFamily
	deadline := time.After(time.Minute)
poll:
	for {
		if f, err := scrape(addr); err == nil {
			calls, _ := sum(f, runmetrics.NameCalls, map[string]string{"service": "inventory", "op": "get_item"})
			conns, _ := sum(f, runmetrics.NameServerConns, map[string]string{"service": "inventory"})
			if calls > 0 && conns > 0 {
				fams = f
				break
			}
		}
		select {
		case <-done:
			break poll
		case <-deadline:
			break poll
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.NotNil(t, fams, "no scrape during the run saw calls and server connections; stderr:\n%s", stderrOf(&errOut, done))

	scenario, ok := sum(fams, runmetrics.NameScenario, map[string]string{"scenario": "latency-spike"})
	assert.True(t, ok, "the scenario's info series is exposed")
	assert.Equal(t, 1.0, scenario)
	latencies, ok := sum(fams, runmetrics.NameLatency, map[string]string{"service": "inventory"})
	assert.True(t, ok)
	assert.Positive(t, latencies, "the latency histogram counted calls")
	// Faults are exposed only while one is on: the schedule decides when.
	for _, name := range []string{runmetrics.NameErrors, runmetrics.NameInFlight} {
		_, registered := fams[name]
		assert.True(t, registered, "%s is exposed", name)
	}

	wg.Wait()
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	assert.Contains(t, errOut.String(), "run metrics at http://"+addr+"/metrics")
	_, err := scrape(addr)
	assert.Error(t, err, "the metrics server is gone once certify returns")
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the port is free again")
	require.NoError(t, ln.Close())
}

// stderrOf is what the command printed, once it has returned (a bytes.Buffer
// is not safe to read while written).
func stderrOf(b *bytes.Buffer, done <-chan struct{}) string {
	select {
	case <-done:
		return b.String()
	default:
		return "(the command is still running)"
	}
}

func TestMetricsAddrRefusesNonLoopbackWithExitCode2(t *testing.T) {
	for _, tc := range []struct{ cmd, addr, want string }{
		{"certify", "0.0.0.0:9464", `-metrics-addr "0.0.0.0:9464": not a loopback address`},
		{"certify", ":9464", `-metrics-addr ":9464": not a loopback address`},
		{"sweep", "192.0.2.1:9464", `-metrics-addr "192.0.2.1:9464": not a loopback address`},
		{"sweep", "9464", `-metrics-addr "9464": address 9464: missing port in address`},
	} {
		t.Run(tc.cmd+" "+tc.addr, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), []string{tc.cmd, "-metrics-addr", tc.addr}, &out, &errOut)
			assert.Equal(t, 2, code)
			assert.Empty(t, out.String())
			assert.Contains(t, errOut.String(), tc.want)
			assert.Equal(t, 1, bytes.Count(errOut.Bytes(), []byte("\n")), "one line: %q", errOut.String())
		})
	}
}

func TestMetricsAddrInUseIsExitCode2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"certify", "-profile", "quick", "-scenario", "baseline", "-report", "-", "-metrics-addr", "127.0.0.1:" + strconv.Itoa(port)}, &out, &errOut)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut.String(), "address already in use")
	assert.Equal(t, 1, bytes.Count(errOut.Bytes(), []byte("\n")), "one line: %q", errOut.String())
}
