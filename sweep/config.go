package sweep

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/reference"
)

// ErrInvalidConfig is returned for a sweep that cannot run as configured; the
// message names the field.
var ErrInvalidConfig = errors.New("invalid sweep configuration")

// Faults a sweep can add on top of the latency.
const (
	FaultNone   = "none"
	FaultResets = "resets" // 5% of requests end with a TCP reset after processing
	Fault5xx    = "5xx"    // 5% of requests answer 503
)

// Ways to inject the latency.
const (
	// ViaToxic delays the service's responses with Toxiproxy's latency
	// toxic (downstream): network latency, as a connection sees it.
	ViaToxic = "toxic"
	// ViaServer delays each request in the fake service's handler (its
	// delay fault): server think time.
	ViaServer = "server"
)

// faultRate is the share of requests a resets or 5xx fault hits.
const faultRate = 0.05

// Defaults of a Config.
const (
	DefaultService        = fakeservers.Inventory
	DefaultDuration       = 2 * time.Second
	DefaultWatchdog       = 5 * time.Second
	DefaultPlateauFrac    = 0.95
	DefaultErrorThreshold = 0.01
)

// DefaultPools and DefaultConcurrency are the grid a sweep uses when none is given.
var (
	DefaultPools       = []int{1, 2, 4, 8, 16, 32}
	DefaultConcurrency = []int{8, 32}
)

// ClientFunc builds the client under test for one service with a pool of
// pool connections. The harness tears it down (CloseIdleConnections, Close)
// after each cell.
type ClientFunc func(svc harness.Service, pool int) (harness.Client, error)

// Reference is the reference client of package reference with its pool
// bounds set to pool (reference.PoolFactory): pre-warmed, its timeouts,
// retries and breaker left as configured.
func Reference(svc harness.Service, pool int) (harness.Client, error) {
	if pool < 1 {
		return nil, fmt.Errorf("reference client for %s: pool %d: %w: must be >= 1", svc.Name, pool, ErrInvalidConfig)
	}
	return reference.PoolFactory(pool)(svc)
}

// Config is one sweep.
type Config struct {
	// Service is the fake service driven (default inventory).
	Service string `json:"service"`
	// Latency is injected on the service for every cell (0: none).
	Latency time.Duration `json:"latency"`
	// LatencyVia is ViaToxic (default) or ViaServer.
	LatencyVia string `json:"latency_via"`
	// Fault is FaultNone (default), FaultResets or Fault5xx.
	Fault string `json:"fault"`
	// Pools are the pool sizes, each >= 1 (default DefaultPools).
	Pools []int `json:"pools"`
	// Concurrency are the closed-loop worker counts (default
	// DefaultConcurrency); ignored when Rate > 0.
	Concurrency []int `json:"concurrency,omitempty"`
	// Rate, when > 0, drives an open loop at Rate calls per second instead.
	Rate float64 `json:"rate,omitempty"`
	// Duration is each cell's workload length (default 2s).
	Duration time.Duration `json:"duration"`
	// Seed seeds the workload and the fault draws of every cell.
	Seed int64 `json:"seed"`
	// Watchdog is the per-call bound after which the harness records a hang
	// (default 5s); it also bounds each cell.
	Watchdog time.Duration `json:"watchdog"`
	// PlateauFrac is the share of the best throughput a pool must reach to
	// be on the plateau (default 0.95).
	PlateauFrac float64 `json:"plateau_frac"`
	// ErrorThreshold is the error rate, above the lowest of the load level,
	// at which errors count as begun (default 0.01).
	ErrorThreshold float64 `json:"error_threshold"`

	// Repeat is how many times each cell runs (default 1); a cell reports
	// the median of its runs and their spread (Cell.Spread).
	Repeat int `json:"repeat"`
	// FixedPool says the client builds its own pool and ignores the pool
	// argument (a driver, a gallery client): the sweep then varies only the
	// load, runs every cell with pool 0 and finds no knee; Pools is ignored.
	FixedPool bool `json:"fixed_pool,omitempty"`
	// ClientName names the client in the output (default "reference").
	ClientName string `json:"client"`
	// Profile is the contract the runs hold the client to (default
	// reference.Profile()); it sets what the harness expects of the pool.
	Profile *harness.Profile `json:"-"`

	// Client builds the client under test (default Reference).
	Client ClientFunc `json:"-"`
	// Progress, when set, is called before each cell starts and after it ends.
	Progress func(Progress) `json:"-"`
	// RunOptions are passed to every cell's harness.Run (an observer, say).
	RunOptions []harness.RunOption `json:"-"`
}

// Progress is what the progress callback sees.
type Progress struct {
	Index int // 1-based cell number
	Total int
	Pool  int
	// Concurrency is the closed-loop workers, 0 for an open loop.
	Concurrency int
	Rate        float64
	Done        bool  // false: the cell is starting; true: it ended
	Cell        *Cell // the measured cell when Done
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Service == "" {
		c.Service = DefaultService
	}
	if c.LatencyVia == "" {
		c.LatencyVia = ViaToxic
	}
	if c.Fault == "" {
		c.Fault = FaultNone
	}
	switch {
	case c.FixedPool:
		c.Pools = []int{0}
	case c.Pools == nil:
		c.Pools = slices.Clone(DefaultPools)
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	if c.ClientName == "" {
		c.ClientName = "reference"
	}
	if c.Profile == nil {
		p := reference.Profile()
		c.Profile = &p
	}
	if c.Rate > 0 {
		c.Concurrency = nil
	} else if c.Concurrency == nil {
		c.Concurrency = slices.Clone(DefaultConcurrency)
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Seed == 0 {
		c.Seed = harness.DefaultSeed
	}
	if c.Watchdog == 0 {
		c.Watchdog = DefaultWatchdog
	}
	if c.PlateauFrac == 0 {
		c.PlateauFrac = DefaultPlateauFrac
	}
	if c.ErrorThreshold == 0 {
		c.ErrorThreshold = DefaultErrorThreshold
	}
	if c.Client == nil {
		c.Client = Reference
	}
	return c
}

// Validate refuses a configuration that cannot run, naming the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if harness.ServiceIDOf(c.Service) == harness.ServiceUnknown {
		return bad("service %q: use %s", c.Service, strings.Join(fakeservers.Services, ", "))
	}
	switch c.Fault {
	case FaultNone, FaultResets, Fault5xx:
	default:
		return bad("fault %q: use %s, %s or %s", c.Fault, FaultNone, FaultResets, Fault5xx)
	}
	switch c.LatencyVia {
	case ViaToxic, ViaServer:
	default:
		return bad("latency via %q: use %s or %s", c.LatencyVia, ViaToxic, ViaServer)
	}
	if c.Latency < 0 {
		return bad("latency %s is negative", c.Latency)
	}
	if len(c.Pools) == 0 {
		return bad("pools: give at least one pool size")
	}
	for _, p := range c.Pools {
		if p < 1 && !c.FixedPool {
			return bad("pool size %d: must be >= 1", p)
		}
	}
	if c.Repeat < 1 {
		return bad("repeat %d: run each cell at least once", c.Repeat)
	}
	if c.Rate < 0 {
		return bad("rate %g is negative", c.Rate)
	}
	if c.Rate == 0 {
		if len(c.Concurrency) == 0 {
			return bad("concurrency: give at least one worker count, or a rate")
		}
		for _, n := range c.Concurrency {
			if n < 1 {
				return bad("concurrency %d: must be >= 1", n)
			}
		}
	}
	if c.Duration < 100*time.Millisecond {
		return bad("duration %s: give at least 100ms per cell", c.Duration)
	}
	if c.Watchdog < 0 {
		return bad("watchdog %s is negative", c.Watchdog)
	}
	if c.PlateauFrac <= 0 || c.PlateauFrac > 1 {
		return bad("plateau fraction %g: must be within (0, 1]", c.PlateauFrac)
	}
	if c.ErrorThreshold < 0 || c.ErrorThreshold >= 1 {
		return bad("error threshold %g: must be within [0, 1)", c.ErrorThreshold)
	}
	return nil
}

// ParseInts parses a comma-separated list of positive integers, e.g.
// "1,2,4,8"; field names the list in the error.
func ParseInts(field, s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: %s is empty: give a comma-separated list such as 1,2,4", ErrInvalidConfig, field)
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %q is not a whole number: give a comma-separated list such as 1,2,4", ErrInvalidConfig, field, part)
		}
		if n < 1 {
			return nil, fmt.Errorf("%w: %s: %d must be >= 1", ErrInvalidConfig, field, n)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%w: %s: %d is listed twice", ErrInvalidConfig, field, n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
