package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Bounds of the harness's own work around each cell.
const (
	resetTimeout = 30 * time.Second
	// cellOverhead covers what Run does besides the workload: building and
	// warming the client, teardown, and the leak measurements' settling.
	cellOverhead = 30 * time.Second
)

// Result is a whole sweep: the configuration, every measured cell, and the
// knee of each load level.
type Result struct {
	Service    string           `json:"service"`
	Latency    time.Duration    `json:"latency_ns"`
	LatencyVia string           `json:"latency_via"`
	Fault      string           `json:"fault"`
	Mode       harness.LoopMode `json:"mode"`
	// Rate is the open-loop offered rate (calls/s), 0 for a closed loop.
	Rate        float64       `json:"rate,omitempty"`
	Pools       []int         `json:"pools"`
	Concurrency []int         `json:"concurrency,omitempty"`
	Duration    time.Duration `json:"duration_ns"`
	Seed        int64         `json:"seed"`
	Environment string        `json:"environment"`
	Started     time.Time     `json:"started"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	// Interrupted: the context was canceled before every cell ran; Cells
	// holds the cells done so far.
	Interrupted bool   `json:"interrupted,omitempty"`
	Cells       []Cell `json:"cells"`
	// Knees has one entry per load level (per concurrency, or the one rate).
	Knees []Knee `json:"knees"`
	// Cores is runtime.NumCPU(); RuleOfThumb is (cores * 2) + 1 spindle.
	Cores       int `json:"cores"`
	RuleOfThumb int `json:"rule_of_thumb"`
	// Client names the client swept; FixedPool says its pool is its own
	// and only the load was varied (every cell has pool 0, no knee).
	Client    string `json:"client"`
	FixedPool bool   `json:"fixed_pool,omitempty"`
	// Repeat is how many runs each cell took.
	Repeat int `json:"repeat"`
}

// Spread is how a cell's runs differed: its throughput and p99 are the
// medians of Runs runs, these their extremes and the throughput's
// standard deviation.
type Spread struct {
	Runs             int           `json:"runs"`
	MinThroughput    float64       `json:"min_throughput"`
	MaxThroughput    float64       `json:"max_throughput"`
	StddevThroughput float64       `json:"stddev_throughput"`
	MinP99           time.Duration `json:"min_p99_ns"`
	MaxP99           time.Duration `json:"max_p99_ns"`
}

// Cell is one pool size at one load.
type Cell struct {
	Pool int `json:"pool"`
	// Concurrency is the closed-loop workers, 0 for an open loop.
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	// Calls started within the cell's duration, and how they ended.
	Calls   int   `json:"calls"`
	OK      int   `json:"ok"`
	Failed  int   `json:"failed"`
	Hung    int   `json:"hung"`
	Dropped int64 `json:"dropped"` // open-loop calls not started: in-flight cap reached
	// Throughput is successful calls per second of the cell's duration.
	Throughput float64 `json:"throughput"`
	// P50 and P99 are the latencies of the successful calls (HDR histogram,
	// 3 significant digits); 0 when none succeeded.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	// Mean is the mean latency of the successful calls.
	Mean time.Duration `json:"mean_ns"`
	// ErrorRate is Failed / Calls.
	ErrorRate float64 `json:"error_rate"`
	// Errors counts the failed calls per error class.
	Errors map[string]int `json:"errors,omitempty"`
	// What the server saw during the cell (0 when the environment has no
	// server-side truth): PeakConns is the most connections open at once,
	// the pool bound as kept; Attempts the requests of the cell's calls,
	// retries and transport replays included; Faulted those the injected
	// fault hit (the latency's delay not counted).
	PeakConns int `json:"peak_conns"`
	Attempts  int `json:"attempts"`
	Faulted   int `json:"faulted"`
	// Elapsed is the cell's wall time, harness set-up and teardown included.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Err is why the cell could not be measured, "" otherwise.
	Err string `json:"err,omitempty"`
	// Spread is how the runs of a repeated cell differed; nil for one run.
	Spread *Spread `json:"spread,omitempty"`
}

// Knee is what one load level says about the pool size.
type Knee struct {
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	// MaxThroughput is the best throughput over the pools.
	MaxThroughput float64 `json:"max_throughput"`
	// Plateau is the smallest pool whose throughput reaches PlateauFrac of
	// MaxThroughput: the measured answer. 0 when nothing succeeded.
	Plateau int `json:"plateau"`
	// AtEdge is set when Plateau is the largest pool swept (of several):
	// throughput may still rise beyond the grid, so the answer is a lower
	// bound.
	AtEdge bool `json:"at_edge,omitempty"`
	// LowestP99 is the pool with the lowest p99 (the smaller on a tie).
	LowestP99 int `json:"lowest_p99"`
	// ErrorsBegin is the largest pool whose error rate exceeds the load
	// level's lowest (the floor an injected fault sets) by more than
	// ErrorThreshold and by more than chance (see errorsRose): errors begin
	// at this pool size and below. 0 when no pool does.
	ErrorsBegin int `json:"errors_begin"`
	// Little's law: connections needed = arrival rate x time a call holds
	// one. LittleRate is the offered rate (open loop) or MaxThroughput
	// (closed loop); LittleLatency is the mean latency at the largest pool,
	// where calls queue least (Little's law holds for means). In a closed
	// loop the estimate is capped at the workers.
	LittleRate     float64       `json:"little_rate"`
	LittleLatency  time.Duration `json:"little_latency_ns"`
	LittleEstimate float64       `json:"little_estimate"`
	// LittleGrid is the smallest pool of the grid >= LittleEstimate rounded
	// to whole connections (a measured 4.05 asks for 4, not 5), 0 when the
	// grid stops below it or nothing succeeded.
	LittleGrid int `json:"little_grid"`
}

// Run sweeps env's service over cfg's grid, one cell after another: for each
// cell it resets the environment, injects the latency and fault through the
// fault driver and runs the harness workload against a fresh client. Each
// cell is bounded by its duration plus the watchdog and a fixed overhead.
//
// It returns ErrInvalidConfig for a configuration that cannot run, before
// anything is started. When ctx is canceled it returns the cells done so far,
// marked Interrupted, with ctx's error. A cell that fails on its own (the
// client cannot be built, the time bound fired) stops the sweep with an error
// and the result so far.
func Run(ctx context.Context, env harness.Environment, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env == nil {
		return nil, fmt.Errorf("%w: no environment: pass one, e.g. from env.NewEmbedded", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	actions := faultActions(cfg)
	cores := runtime.NumCPU()
	res := &Result{
		Service: cfg.Service, Latency: cfg.Latency, LatencyVia: cfg.LatencyVia, Fault: cfg.Fault,
		Mode: harness.ClosedLoop, Rate: cfg.Rate, Pools: cfg.Pools, Concurrency: cfg.Concurrency,
		Duration: cfg.Duration, Seed: cfg.Seed, Environment: env.Name(), Started: time.Now(),
		Cores: cores, RuleOfThumb: cores*2 + 1,
		Client: cfg.ClientName, FixedPool: cfg.FixedPool, Repeat: cfg.Repeat,
	}
	loads := cfg.Concurrency
	if cfg.Rate > 0 {
		res.Mode = harness.OpenLoop
		loads = []int{0}
	}
	defer func() { res.Elapsed = time.Since(res.Started) }()
	// Leave the environment without the sweep's faults, whatever happens.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resetTimeout)
		defer cancel()
		_ = env.Reset(rctx, cfg.Seed)
	}()

	total := len(loads) * len(cfg.Pools)
	i := 0
	for _, load := range loads {
		for _, pool := range cfg.Pools {
			i++
			if err := ctx.Err(); err != nil {
				res.Interrupted = true
				res.Knees = analyse(res, cfg)
				return res, fmt.Errorf("sweep interrupted before cell %d of %d: %w", i, total, err)
			}
			p := Progress{Index: i, Total: total, Pool: pool, Concurrency: load, Rate: cfg.Rate}
			if cfg.Progress != nil {
				cfg.Progress(p)
			}
			cell, err := repeatCell(ctx, env, cfg, actions, pool, load)
			if cell != nil {
				res.Cells = append(res.Cells, *cell)
				if cfg.Progress != nil {
					p.Done, p.Cell = true, cell
					cfg.Progress(p)
				}
			}
			if err != nil {
				res.Interrupted = ctx.Err() != nil
				res.Knees = analyse(res, cfg)
				return res, fmt.Errorf("cell %d of %d (pool %d%s): %w", i, total, pool, loadLabel(load, cfg.Rate), err)
			}
		}
	}
	res.Knees = analyse(res, cfg)
	return res, nil
}

// analyse finds the knee of each load level among the cells measured; a
// client whose pool the sweep cannot set has no knee to find.
func analyse(res *Result, cfg Config) []Knee {
	if cfg.FixedPool {
		return nil
	}
	return analyseLoads(res, cfg)
}

func loadLabel(concurrency int, rate float64) string {
	if concurrency > 0 {
		return fmt.Sprintf(", concurrency %d", concurrency)
	}
	return fmt.Sprintf(", rate %g/s", rate)
}

// faultActions are the fault-driver actions that put cfg's latency and fault
// on the service. The fake service's HTTP faults are set in one action
// because SetHTTPFaults replaces them all.
func faultActions(cfg Config) []harness.Action {
	var acts []harness.Action
	var httpFaults []fakeservers.Fault
	if cfg.Latency > 0 {
		switch cfg.LatencyVia {
		case ViaServer:
			httpFaults = append(httpFaults, fakeservers.Fault{Name: "sweep-latency", Kind: fakeservers.FaultDelay, Delay: fakeservers.Duration(cfg.Latency)})
		default:
			acts = append(acts, harness.AddToxic(cfg.Service, harness.Latency("sweep-latency", harness.Downstream, cfg.Latency, 0)))
		}
	}
	switch cfg.Fault {
	case FaultResets:
		httpFaults = append(httpFaults, fakeservers.Fault{Name: "sweep-resets", Kind: fakeservers.FaultProcessThenFail, Then: fakeservers.ThenReset, Probability: faultRate})
	case Fault5xx:
		httpFaults = append(httpFaults, fakeservers.Fault{Name: "sweep-5xx", Kind: fakeservers.FaultStatus, Status: 503, Probability: faultRate})
	}
	if len(httpFaults) > 0 {
		acts = append(acts, harness.SetHTTPFaults(cfg.Service, httpFaults...))
	}
	return acts
}

// repeatCell measures one pool size at one load cfg.Repeat times and
// combines the runs; it stops at the first run that fails.
func repeatCell(ctx context.Context, env harness.Environment, cfg Config, actions []harness.Action, pool, concurrency int) (*Cell, error) {
	var runs []Cell
	for range cfg.Repeat {
		cell, err := runCell(ctx, env, cfg, actions, pool, concurrency)
		if cell != nil {
			runs = append(runs, *cell)
		}
		if err != nil {
			if len(runs) == 0 {
				return nil, err
			}
			c := combine(runs)
			return &c, err
		}
	}
	c := combine(runs)
	return &c, nil
}

// combine makes one cell of a cell's runs: counts summed, throughput and
// latencies the medians, the peak the highest, the spread kept. A failed
// run (the last) makes the cell failed.
func combine(runs []Cell) Cell {
	if len(runs) == 1 {
		return runs[0]
	}
	out := runs[len(runs)-1]
	out.Calls, out.OK, out.Failed, out.Hung, out.Dropped, out.Attempts, out.Faulted, out.Elapsed = 0, 0, 0, 0, 0, 0, 0, 0
	out.Errors = nil
	sp := &Spread{Runs: len(runs), MinThroughput: math.Inf(1), MinP99: time.Duration(math.MaxInt64)}
	var tputs []float64
	var p50s, p99s, means []time.Duration
	for _, r := range runs {
		out.Calls += r.Calls
		out.OK += r.OK
		out.Failed += r.Failed
		out.Hung += r.Hung
		out.Dropped += r.Dropped
		out.Attempts += r.Attempts
		out.Faulted += r.Faulted
		out.Elapsed += r.Elapsed
		out.PeakConns = max(out.PeakConns, r.PeakConns)
		for class, n := range r.Errors {
			if out.Errors == nil {
				out.Errors = map[string]int{}
			}
			out.Errors[class] += n
		}
		tputs = append(tputs, r.Throughput)
		sp.MinThroughput, sp.MaxThroughput = min(sp.MinThroughput, r.Throughput), max(sp.MaxThroughput, r.Throughput)
		if r.OK > 0 {
			p50s, p99s, means = append(p50s, r.P50), append(p99s, r.P99), append(means, r.Mean)
			sp.MinP99, sp.MaxP99 = min(sp.MinP99, r.P99), max(sp.MaxP99, r.P99)
		}
	}
	if len(p99s) == 0 {
		sp.MinP99 = 0
	}
	out.Throughput = median(tputs)
	out.P50, out.P99, out.Mean = median(p50s), median(p99s), median(means)
	if out.Calls > 0 {
		out.ErrorRate = float64(out.Failed) / float64(out.Calls)
	}
	mean := 0.0
	for _, t := range tputs {
		mean += t / float64(len(tputs))
	}
	for _, t := range tputs {
		sp.StddevThroughput += (t - mean) * (t - mean) / float64(len(tputs)-1)
	}
	sp.StddevThroughput = math.Sqrt(sp.StddevThroughput)
	out.Spread = sp
	return out
}

// median is the middle value (the mean of the two middle ones for an even
// count), the zero value of none.
func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runCell measures one pool size at one load. It returns a nil cell only
// when the cell could not start.
func runCell(ctx context.Context, env harness.Environment, cfg Config, actions []harness.Action, pool, concurrency int) (*Cell, error) {
	started := time.Now()
	rctx, cancel := context.WithTimeout(ctx, resetTimeout)
	err := env.Reset(rctx, cfg.Seed)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("resetting the environment: %w", err)
	}
	for _, a := range actions {
		actx, cancel := context.WithTimeout(ctx, resetTimeout)
		err := env.Faults().Apply(actx, a)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("injecting %s on %s: %w", a.Kind, a.Service, err)
		}
	}

	w := harness.Workload{Duration: cfg.Duration, Mix: mixOf(cfg.Service)}
	if cfg.Rate > 0 {
		w.Mode, w.Rate = harness.OpenLoop, cfg.Rate
		// The cap is there to bound a hanging client, not to shape the load:
		// two seconds' worth of calls, so a client that fails fast or
		// answers never meets it.
		w.MaxInFlight = max(64, int(math.Ceil(2*cfg.Rate)))
	} else {
		w.Mode, w.Workers = harness.ClosedLoop, concurrency
	}
	name := fmt.Sprintf("sweep-%s-pool%d", cfg.Service, pool)
	if cfg.FixedPool {
		name = fmt.Sprintf("sweep-%s-ownpool", cfg.Service)
	}
	if concurrency > 0 {
		name += fmt.Sprintf("-c%d", concurrency)
	}
	spec := harness.RunSpec{Scenario: name, Seed: cfg.Seed, Workload: w, Profile: *cfg.Profile}
	factory := func(svc harness.Service) (harness.Client, error) { return cfg.Client(svc, pool) }

	cctx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Watchdog+cellOverhead)
	defer cancel()
	opts := append([]harness.RunOption{harness.WithWatchdog(cfg.Watchdog)}, cfg.RunOptions...)
	h, err := harness.Run(cctx, env, factory, spec, opts...)
	if h == nil {
		return nil, err
	}
	cell := measure(h, cfg.Duration)
	cell.Pool, cell.Concurrency = pool, concurrency
	if cfg.Rate > 0 {
		cell.Rate = cfg.Rate
	}
	cell.Elapsed = time.Since(started)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("the cell outlived its bound of %s: %w", cfg.Duration+cfg.Watchdog+cellOverhead, err)
		}
		cell.Err = err.Error()
		return &cell, err
	}
	return &cell, nil
}

func mixOf(service string) harness.Mix {
	switch harness.ServiceIDOf(service) {
	case harness.ServicePayment:
		return harness.Mix{Payment: 1}
	case harness.ServiceNotification:
		return harness.Mix{Notification: 1}
	default:
		return harness.Mix{Inventory: 1}
	}
}

// Histogram range: 1µs to 10 minutes, in microseconds, 3 significant digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

// measure reads one cell out of a history: only calls started within the
// workload's duration count, so the tail of calls still finishing after it
// does not inflate the rate.
func measure(h *harness.History, d time.Duration) Cell {
	hist := hdrhistogram.New(histMin, histMax, histDigits)
	c := Cell{Dropped: h.Dropped}
	for _, call := range h.Calls {
		if call.Start >= int64(d) {
			continue
		}
		c.Calls++
		if call.OK() {
			c.OK++
			us := max(histMin, min(histMax, call.Latency().Microseconds()))
			_ = hist.RecordValue(us) // in range by construction
			continue
		}
		c.Failed++
		if call.Class == harness.ClassHang {
			c.Hung++
		}
		if c.Errors == nil {
			c.Errors = map[string]int{}
		}
		class := call.Class.String()
		if call.Class == harness.ClassNone { // a non-2xx answer or a corrupt body
			class = "status"
			if call.Status > 0 {
				class = fmt.Sprintf("http_%d", call.Status)
			}
		}
		c.Errors[class]++
	}
	for _, truth := range h.ServerAfterRun {
		if !truth.Available || truth.Stats == nil {
			continue
		}
		c.PeakConns = max(c.PeakConns, truth.Stats.PeakOpen)
		for _, req := range truth.Stats.Requests {
			if !strings.HasPrefix(req.RequestID, h.RequestIDPrefix) {
				continue // the client's warm-up, not a call of the cell
			}
			c.Attempts++
			if req.Fault != "" && req.Fault != fakeservers.FaultDelay {
				c.Faulted++
			}
		}
	}
	c.Throughput = float64(c.OK) / d.Seconds()
	if c.Calls > 0 {
		c.ErrorRate = float64(c.Failed) / float64(c.Calls)
	}
	if c.OK > 0 {
		c.P50 = time.Duration(hist.ValueAtQuantile(50)) * time.Microsecond
		c.P99 = time.Duration(hist.ValueAtQuantile(99)) * time.Microsecond
		c.Mean = time.Duration(hist.Mean() * float64(time.Microsecond))
	}
	return c
}

// analyseLoads finds the knee of each load level among the cells measured.
func analyseLoads(res *Result, cfg Config) []Knee {
	loads := cfg.Concurrency
	if cfg.Rate > 0 {
		loads = []int{0}
	}
	var knees []Knee
	for _, load := range loads {
		var cells []Cell
		for _, c := range res.Cells {
			if c.Concurrency == load && c.Err == "" {
				cells = append(cells, c)
			}
		}
		if len(cells) == 0 {
			continue
		}
		knees = append(knees, kneeOf(cells, load, cfg))
	}
	return knees
}

// kneeOf analyses one load level's cells.
func kneeOf(cells []Cell, concurrency int, cfg Config) Knee {
	k := Knee{Concurrency: concurrency, Rate: cfg.Rate}
	minErr := math.Inf(1)
	for _, c := range cells {
		k.MaxThroughput = max(k.MaxThroughput, c.Throughput)
		minErr = min(minErr, c.ErrorRate)
	}
	bestP99 := time.Duration(math.MaxInt64)
	largest := 0
	for _, c := range sortedByPool(cells) {
		if k.Plateau == 0 && k.MaxThroughput > 0 && c.Throughput >= cfg.PlateauFrac*k.MaxThroughput {
			k.Plateau = c.Pool
		}
		if c.OK > 0 && c.P99 < bestP99 {
			bestP99, k.LowestP99 = c.P99, c.Pool
		}
		if errorsRose(c, minErr, cfg.ErrorThreshold) {
			k.ErrorsBegin = c.Pool // ascending: the last one is the largest
		}
		if c.OK > 0 {
			largest = c.Pool
			k.LittleLatency = c.Mean
		}
	}
	if largest == 0 {
		k.LittleLatency = cfg.Latency
	}
	k.AtEdge = len(cells) > 1 && k.Plateau > 0 && k.Plateau == slices.MaxFunc(cells, func(a, b Cell) int { return cmp.Compare(a.Pool, b.Pool) }).Pool
	k.LittleRate = k.MaxThroughput
	if cfg.Rate > 0 {
		k.LittleRate = cfg.Rate
	}
	k.LittleEstimate = k.LittleRate * k.LittleLatency.Seconds()
	if concurrency > 0 {
		// A closed loop never has more calls in flight than workers; the
		// rate and the latency come from different cells, so their product
		// can overshoot by the noise between them.
		k.LittleEstimate = min(k.LittleEstimate, float64(concurrency))
	}
	for _, c := range sortedByPool(cells) {
		if k.LittleEstimate > 0 && float64(c.Pool) >= math.Round(k.LittleEstimate) {
			k.LittleGrid = c.Pool
			break
		}
	}
	return k
}

// errorsRose reports whether a cell's error rate is above the floor by more
// than threshold and by more than three standard deviations of a binomial
// draw at the floor's rate over the cell's calls: with a 5% fault, 3 failures
// in 40 calls is chance, not the pool running out. The rate is taken as at
// least one call in the cell, so that a single failure among few calls with
// a floor of zero is not called an onset either.
func errorsRose(c Cell, floor, threshold float64) bool {
	if c.Calls == 0 {
		return false
	}
	n := float64(c.Calls)
	sigma := math.Sqrt(max(floor, 1/n) * (1 - floor) / n)
	return c.ErrorRate-floor > max(threshold, 3*sigma)
}

func sortedByPool(cells []Cell) []Cell {
	out := slices.Clone(cells)
	slices.SortStableFunc(out, func(a, b Cell) int { return cmp.Compare(a.Pool, b.Pool) })
	return out
}
