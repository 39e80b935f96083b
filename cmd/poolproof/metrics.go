package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/runmetrics"
)

// metricsFlagUsage is the -metrics-addr help of certify and sweep.
const metricsFlagUsage = "serve the run's Prometheus metrics (calls, errors, latency, server connections, faults, scenario, calls in flight) at http://ADDR/metrics while the command runs, e.g. 127.0.0.1:9464; loopback addresses only; \"\" serves none"

func addMetricsFlag(fs *flag.FlagSet, addr *string) {
	fs.StringVar(addr, "metrics-addr", "", metricsFlagUsage)
}

// checkMetricsAddr refuses, as a usage error, an address beyond loopback.
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if err := runmetrics.CheckLoopback(addr); err != nil {
		return usageError{"-metrics-addr " + err.Error()}
	}
	return nil
}

// serveMetrics starts the metrics server of -metrics-addr and returns the
// run option that feeds it and the stop to defer; with no address, no
// option and a stop that does nothing. A listen failure (the port is
// taken) is a usage error.
func serveMetrics(addr string, stderr io.Writer) ([]harness.RunOption, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	m := runmetrics.New()
	srv, err := runmetrics.Serve(addr, m)
	if err != nil {
		return nil, nil, usageError{"-metrics-addr " + err.Error()}
	}
	fmt.Fprintf(stderr, "poolproof: run metrics at http://%s/metrics\n", srv.Addr())
	return []harness.RunOption{harness.WithObserver(m)}, func() { _ = srv.Close() }, nil
}
