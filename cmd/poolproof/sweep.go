package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/sweep"
	"github.com/poolproof/poolproof/sweep/sweepreport"
)

func init() {
	register(command{
		name:    "sweep",
		summary: "size a pool: run the reference client at a grid of pool sizes and loads, print throughput, p50/p99 and errors, mark the knee",
		run:     runSweep,
	})
}

// sweepStartTimeout bounds starting the embedded environment.
const sweepStartTimeout = 30 * time.Second

func runSweep(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, reportDir, metricsAddr, err := parseSweepFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "poolproof sweep: %v\n", err)
		return 2
	}
	if reportDir != "" {
		if err := os.MkdirAll(reportDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "poolproof sweep: -report %s: %v: choose a folder you can write to\n", reportDir, err)
			return 2
		}
	}
	cfg.Progress = sweepProgress(stderr)
	var stopMetrics func()
	if cfg.RunOptions, stopMetrics, err = serveMetrics(metricsAddr, stderr); err != nil {
		fmt.Fprintf(stderr, "poolproof sweep: %v\n", err)
		return 2
	}
	defer stopMetrics()

	sctx, cancel := context.WithTimeout(ctx, sweepStartTimeout)
	e, err := env.NewEmbedded(sctx, env.WithSeed(cfg.Seed))
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "poolproof sweep: starting the embedded environment: %v\n", err)
		return 1
	}
	defer e.Close()

	fmt.Fprintf(stderr, "poolproof: sweeping %s on the %s environment\n", cfg.Service, e.Name())
	res, runErr := sweep.Run(ctx, e, cfg)
	if res == nil {
		fmt.Fprintf(stderr, "poolproof sweep: %v\n", runErr)
		return 1
	}
	if err := res.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "poolproof sweep: printing the table: %v\n", err)
		return 1
	}
	if reportDir != "" {
		files, err := sweepreport.Write(reportDir, res)
		if err != nil {
			fmt.Fprintf(stderr, "poolproof sweep: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "report: %s, data: %s\n", files.HTML, files.JSON)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "poolproof sweep: %v\n", runErr)
		return 1
	}
	return 0
}

// parseSweepFlags returns the sweep to run, the -report folder and the
// -metrics-addr.
func parseSweepFlags(args []string, stdout io.Writer) (cfg sweep.Config, reportDir, metricsAddr string, err error) {
	var pools, concur string
	fs := flag.NewFlagSet("poolproof sweep", flag.ContinueOnError)
	fs.StringVar(&cfg.Service, "service", sweep.DefaultService, "service to drive: payment, inventory or notification")
	fs.DurationVar(&cfg.Latency, "latency", 50*time.Millisecond, "latency injected on the service in every cell (0: none)")
	fs.StringVar(&cfg.LatencyVia, "latency-via", sweep.ViaToxic, "how the latency is injected: toxic (Toxiproxy latency toxic on the responses) or server (the fake service's delay fault)")
	fs.StringVar(&cfg.Fault, "fault", sweep.FaultNone, "fault added in every cell: none, resets (5% of requests end with a TCP reset) or 5xx (5% answer 503)")
	fs.StringVar(&pools, "pools", "1,2,4,8,16,32", "comma-separated pool sizes (connections), each >= 1")
	fs.StringVar(&concur, "concurrency", "8,32", "comma-separated closed-loop worker counts (not with -rate)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open-loop offered rate in calls/s instead of closed-loop workers")
	fs.DurationVar(&cfg.Duration, "duration", sweep.DefaultDuration, "how long each cell drives the client")
	fs.Int64Var(&cfg.Seed, "seed", harness.DefaultSeed, "seed of the workload and the fault draws, so a sweep can be replayed")
	fs.StringVar(&reportDir, "report", "", "folder to write sweep.html (table and charts) and sweep.json (the data) in")
	addMetricsFlag(fs, &metricsAddr)
	if err := parseFlags(fs, args, stdout); err != nil {
		return cfg, "", "", err
	}
	if err := checkMetricsAddr(metricsAddr); err != nil {
		return cfg, "", "", err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["rate"] && set["concurrency"] {
		return cfg, "", "", usageError{"-rate and -concurrency both given: drive an open loop (-rate) or closed-loop workers (-concurrency), not both"}
	}
	if set["rate"] && cfg.Rate <= 0 {
		return cfg, "", "", usageError{fmt.Sprintf("-rate %g: give a positive rate in calls/s", cfg.Rate)}
	}
	if cfg.Pools, err = sweep.ParseInts("-pools", pools); err != nil {
		return cfg, "", "", usageError{trimSentinel(err)}
	}
	if cfg.Rate == 0 {
		if cfg.Concurrency, err = sweep.ParseInts("-concurrency", concur); err != nil {
			return cfg, "", "", usageError{trimSentinel(err)}
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", "", usageError{asFlag(trimSentinel(err))}
	}
	return cfg, reportDir, metricsAddr, nil
}

// trimSentinel drops the sentinel's prefix: on the command line the flag
// name says what is wrong.
func trimSentinel(err error) string {
	return strings.TrimPrefix(err.Error(), sweep.ErrInvalidConfig.Error()+": ")
}

// asFlag names the flag in a sweep.Config validation message, which names
// the field ("service \"x\": ...", "latency via ...", "pool size 0: ...").
func asFlag(msg string) string {
	switch {
	case strings.HasPrefix(msg, "latency via "):
		return "-latency-via " + strings.TrimPrefix(msg, "latency via ")
	case strings.HasPrefix(msg, "pool"):
		return "-pools: " + msg
	}
	return "-" + msg
}

// sweepProgress prints one line per cell on stderr as it ends, numbered.
func sweepProgress(w io.Writer) func(sweep.Progress) {
	return func(p sweep.Progress) {
		load := fmt.Sprintf("concurrency %d", p.Concurrency)
		if p.Concurrency == 0 {
			load = fmt.Sprintf("rate %g/s", p.Rate)
		}
		if !p.Done {
			fmt.Fprintf(w, "[cell %d of %d] pool %d, %s ...\n", p.Index, p.Total, p.Pool, load)
			return
		}
		c := p.Cell
		fmt.Fprintf(w, "[cell %d of %d] pool %d, %s: %.1f ok/s, p99 %s, %.1f%% errors (%s)\n",
			p.Index, p.Total, p.Pool, load, c.Throughput, c.P99.Round(100*time.Microsecond), 100*c.ErrorRate, c.Elapsed.Round(10*time.Millisecond))
	}
}
