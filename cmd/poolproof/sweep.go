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

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/sweep"
	"github.com/poolproof/poolproof/sweep/sweepreport"
)

func init() {
	register(command{
		name:    "sweep",
		summary: "size a pool: run a client at a grid of pool sizes (the reference's; other clients keep their own) and loads, each cell repeated, print throughput, p50/p99, their spread and errors, mark the knee",
		run:     runSweep,
	})
}

// sweepStartTimeout bounds starting the embedded environment.
const sweepStartTimeout = 30 * time.Second

func runSweep(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseSweepFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = f.chooseClient()
	}
	if err != nil {
		fmt.Fprintf(stderr, "poolproof sweep: %v\n", err)
		return 2
	}
	cfg, reportDir, metricsAddr := f.cfg, f.reportDir, f.metricsAddr
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
	if f.driver != nil {
		// One driver process per cell run; the deferred Close ends one an
		// interrupt left.
		drv := driver.NewFactory(ctx, f.driver, e.Services(), *cfg.Profile)
		defer drv.Close()
		cfg.Client = func(svc harness.Service, _ int) (harness.Client, error) { return drv.Client(svc) }
	}

	fmt.Fprintf(stderr, "poolproof: sweeping the %s client on %s on the %s environment, %d runs per cell\n", cfg.ClientName, cfg.Service, e.Name(), cfg.Repeat)
	if cfg.FixedPool {
		fmt.Fprintf(stderr, "poolproof: %s\n", sweep.FixedPoolNote)
	}
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

// sweepFlags are the sweep command's options, parsed and checked.
type sweepFlags struct {
	cfg                    sweep.Config
	reportDir, metricsAddr string
	client, contract       string
	driver                 []string // the driver's command line, split; nil for a built-in client
	poolsSet               bool
}

// parseSweepFlags returns the sweep's options.
func parseSweepFlags(args []string, stdout io.Writer) (f sweepFlags, err error) {
	var pools, concur string
	cfg := &f.cfg
	fs := flag.NewFlagSet("poolproof sweep", flag.ContinueOnError)
	fs.StringVar(&f.client, "client", clientReference, "client to sweep: reference (its pool is set per cell), or plain, retrying or a gallery client ("+strings.Join(galleryNames(), ", ")+"), whose pool is their own: for those only the load varies")
	driverCmd := fs.String("driver", "", "sweep a client in any language: the command that runs its driver (as certify takes it); its pool is its own, so only the load varies")
	fs.StringVar(&f.contract, "contract", "", "contract file the client is held to (as certify takes it), instead of the built-in client's own or, for a driver, the default contract")
	fs.IntVar(&cfg.Repeat, "repeat", 3, "runs per cell: the table and the page show the median and the spread (min-max, standard deviation) of throughput and p99")
	fs.StringVar(&cfg.Service, "service", sweep.DefaultService, "service to drive: payment, inventory or notification")
	fs.DurationVar(&cfg.Latency, "latency", 50*time.Millisecond, "latency injected on the service in every cell (0: none)")
	fs.StringVar(&cfg.LatencyVia, "latency-via", sweep.ViaToxic, "how the latency is injected: toxic (Toxiproxy latency toxic on the responses) or server (the fake service's delay fault)")
	fs.StringVar(&cfg.Fault, "fault", sweep.FaultNone, "fault added in every cell: none, resets (5% of requests end with a TCP reset) or 5xx (5% answer 503)")
	fs.StringVar(&pools, "pools", "1,2,4,8,16,32", "comma-separated pool sizes (connections), each >= 1; the reference client only")
	fs.StringVar(&concur, "concurrency", "8,32", "comma-separated closed-loop worker counts (not with -rate)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open-loop offered rate in calls/s instead of closed-loop workers")
	fs.DurationVar(&cfg.Duration, "duration", sweep.DefaultDuration, "how long each cell drives the client")
	fs.Int64Var(&cfg.Seed, "seed", harness.DefaultSeed, "seed of the workload and the fault draws, so a sweep can be replayed")
	fs.StringVar(&f.reportDir, "report", "", "folder to write sweep.html (table and charts) and sweep.json (the data) in")
	addMetricsFlag(fs, &f.metricsAddr)
	if err := parseFlags(fs, args, stdout); err != nil {
		return f, err
	}
	if err := checkMetricsAddr(f.metricsAddr); err != nil {
		return f, err
	}
	if f.driver, err = driverCommand(fs, *driverCmd, "sweep"); err != nil {
		return f, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["rate"] && set["concurrency"] {
		return f, usageError{"-rate and -concurrency both given: drive an open loop (-rate) or closed-loop workers (-concurrency), not both"}
	}
	if set["rate"] && cfg.Rate <= 0 {
		return f, usageError{fmt.Sprintf("-rate %g: give a positive rate in calls/s", cfg.Rate)}
	}
	if cfg.Repeat < 1 {
		return f, usageError{fmt.Sprintf("-repeat %d: run each cell at least once", cfg.Repeat)}
	}
	f.poolsSet = set["pools"]
	if cfg.Pools, err = sweep.ParseInts("-pools", pools); err != nil {
		return f, usageError{trimSentinel(err)}
	}
	if cfg.Rate == 0 {
		if cfg.Concurrency, err = sweep.ParseInts("-concurrency", concur); err != nil {
			return f, usageError{trimSentinel(err)}
		}
	}
	if err := cfg.Validate(); err != nil {
		return f, usageError{asFlag(trimSentinel(err))}
	}
	return f, nil
}

// chooseClient sets the sweep's client, its contract and whether the
// sweep can set its pool: only the reference client's pool is set per
// cell; every other client (plain, retrying, a gallery client, a driver)
// builds its own, so its sweep varies only the load.
func (f *sweepFlags) chooseClient() error {
	profile := reference.Profile()
	switch {
	case f.driver != nil:
		profile = harness.DefaultProfile()
		f.cfg.ClientName = fmt.Sprintf("driver %q", strings.Join(f.driver, " "))
		f.cfg.FixedPool = true // the client is built once the environment runs
	case f.client == clientReference:
		f.cfg.ClientName = clientReference
	default:
		factory, p, err := selectClient(f.client)
		if err != nil {
			return err
		}
		profile = p
		f.cfg.ClientName, f.cfg.FixedPool = f.client, true
		f.cfg.Client = func(svc harness.Service, _ int) (harness.Client, error) { return factory(svc) }
	}
	if f.cfg.FixedPool && f.poolsSet {
		return usageError{fmt.Sprintf("-pools given for the %s client, whose pool is its own: the sweep can vary only its load (-concurrency or -rate)", f.cfg.ClientName)}
	}
	if f.contract != "" {
		p, err := harness.LoadProfile(f.contract)
		if err != nil {
			return usageError{"-contract: " + oneLine(err)}
		}
		profile = p
	}
	f.cfg.Profile = &profile
	return nil
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
		pool := fmt.Sprintf("pool %d", p.Pool)
		if p.Pool == 0 {
			pool = "its own pool"
		}
		if !p.Done {
			fmt.Fprintf(w, "[cell %d of %d] %s, %s ...\n", p.Index, p.Total, pool, load)
			return
		}
		c := p.Cell
		runs := ""
		if c.Spread != nil {
			tput, p99 := c.Spread.Format()
			runs = fmt.Sprintf(" (median of %d runs: ok/s %s, p99 %s)", c.Spread.Runs, tput, p99)
		}
		fmt.Fprintf(w, "[cell %d of %d] %s, %s: %.1f ok/s, p99 %s, %.1f%% errors%s (%s)\n",
			p.Index, p.Total, pool, load, c.Throughput, c.P99.Round(100*time.Microsecond), 100*c.ErrorRate, runs, c.Elapsed.Round(10*time.Millisecond))
	}
}
