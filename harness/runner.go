package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/internal/cpuload"
	"github.com/poolproof/poolproof/internal/procfd"
)

// Errors Run returns before any call is made.
// (ErrUnknownService, for a service in the mix that the environment does
// not serve, is shared with the fault driver.)
var ErrInvalidRun = errors.New("invalid run")

// RunSpec is one seeded, replayable run: the same spec with the same seed
// issues the same calls (operation, item, amount, request id, order id) in
// the same numbering.
type RunSpec struct {
	Scenario string   `json:"scenario"`
	Seed     int64    `json:"seed"`
	Workload Workload `json:"workload"`
	Steps    []Step   `json:"steps,omitempty"`
	Profile  Profile  `json:"profile"`
	// Protocol is what the services offer the client: ProtocolHTTP1 (the
	// default) or ProtocolHTTP2.
	Protocol string `json:"protocol,omitempty"`
}

// Progress is a snapshot handed to the progress callback at every sample.
type Progress struct {
	Scenario string
	Seed     int64
	Elapsed  time.Duration
	Calls    int64 // recorded so far
	Failed   int64 // of which failed (any error class)
	Hung     int64 // of which hung
	InFlight int64
	Dropped  int64
	Step     string // label of the last nemesis step started, "" before the first
}

// RunOption tunes Run.
type RunOption func(*runConfig)

type runConfig struct {
	progress        func(Progress)
	observer        Observer
	sampleInterval  time.Duration
	watchdog        time.Duration
	watchdogFactor  int
	watchdogMargin  time.Duration
	teardownTimeout time.Duration
	settle          time.Duration
	fdTolerance     int
	threadTolerance int
	stepTimeout     time.Duration
	observeTimeout  time.Duration
	// Ceilings above the baseline: 0 is the default, negative is none.
	fdCeiling        int
	goroutineCeiling int
}

func defaultRunConfig() runConfig {
	return runConfig{
		sampleInterval:  100 * time.Millisecond,
		watchdogFactor:  2,
		watchdogMargin:  time.Second,
		teardownTimeout: 5 * time.Second,
		settle:          2 * time.Second,
		fdTolerance:     4,
		threadTolerance: defaultThreadTolerance,
		stepTimeout:     10 * time.Second,
		observeTimeout:  5 * time.Second,
	}
}

// WithProgress calls fn at every sample (every ~100ms) from the sampler
// goroutine; fn must return quickly.
func WithProgress(fn func(Progress)) RunOption { return func(c *runConfig) { c.progress = fn } }

// WithSampleInterval sets how often the samplers read goroutines, fds, server
// connections and calls in flight (default 100ms).
func WithSampleInterval(d time.Duration) RunOption {
	return func(c *runConfig) {
		if d > 0 {
			c.sampleInterval = d
		}
	}
}

// WithWatchdog sets the per-call bound after which a call that has not
// returned (Do and the body read) is recorded as hung and its goroutine
// abandoned; the worker moves on. The default is the largest per-call
// RequestTimeout of the driven services (as Profile.For gives it, so derived
// from AttemptTimeout when only that is declared) x 2 + 1s, and
// UndeclaredWatchdog for a service that declares neither. The call's context is not
// canceled then: a client must enforce its own declared timeout.
func WithWatchdog(d time.Duration) RunOption {
	return func(c *runConfig) {
		if d > 0 {
			c.watchdog = d
		}
	}
}

// WithTeardownTimeout bounds each CloseIdleConnections/Close call on a
// client (default 5s); one that does not return is recorded as hung.
func WithTeardownTimeout(d time.Duration) RunOption {
	return func(c *runConfig) {
		if d > 0 {
			c.teardownTimeout = d
		}
	}
}

// WithSettle bounds how long the leak measurements wait for server-side
// connections and file descriptors to return to baseline (default 2s each).
func WithSettle(d time.Duration) RunOption {
	return func(c *runConfig) {
		if d > 0 {
			c.settle = d
		}
	}
}

// WithFDTolerance sets how many file descriptors above the baseline still
// pass (default 4: the harness's own admin connections may come and go).
func WithFDTolerance(n int) RunOption {
	return func(c *runConfig) {
		if n >= 0 {
			c.fdTolerance = n
		}
	}
}

// defaultThreadTolerance is how many threads a driver's process may hold
// after idle close beyond those it had before its first call: language
// runtimes start a few on first use and keep them (Go's scheduler never
// ends an idle thread, Node starts its libuv pool on first use); a client
// that starts threads per call or per connection exceeds it.
const defaultThreadTolerance = 8

// WithThreadTolerance sets how many threads above its baseline a driver's
// process may hold after idle close and still pass (default 8).
func WithThreadTolerance(n int) RunOption {
	return func(c *runConfig) {
		if n >= 0 {
			c.threadTolerance = n
		}
	}
}

// defaultGoroutineCeiling is how many goroutines above the baseline stop a
// run. The reference client under the heaviest scenario (96 workers) with
// the embedded environment's per-connection goroutines stays in the low
// thousands; 50,000 parked goroutines already hold at least 100 MiB of
// stack, and every later scenario's goroutine profile (the leak search
// reads it) and the scheduler slow down with them. No correct client comes
// near it; a client leaking a goroutine or two per call reaches it within
// one scenario, and stopping there keeps the rest of the certification
// measuring the client rather than the harness's own degradation.
const defaultGoroutineCeiling = 50_000

// fdCeilingShare: the default descriptor ceiling is this share of the room
// between the baseline and the soft RLIMIT_NOFILE. The other half is left
// for finishing the run: calls in flight, teardown, the servers' and
// Toxiproxy's side of every connection in the embedded environment, the
// admin calls of leak measurement and reset, and the report.
const fdCeilingShare = 0.5

// WithFDCeiling sets how many open file descriptors above the baseline
// stop the run early: the runner stops starting calls, records why
// (History.StoppedEarly), tears down and measures as usual. The default is
// half the room between the baseline and the process's descriptor limit;
// a negative n disables it.
func WithFDCeiling(n int) RunOption {
	return func(c *runConfig) {
		if n != 0 {
			c.fdCeiling = n
		}
	}
}

// WithGoroutineCeiling sets how many goroutines above the baseline (as
// Sample.Goroutines counts them) stop the run early, as WithFDCeiling
// does (default 50,000); a negative n disables it.
func WithGoroutineCeiling(n int) RunOption {
	return func(c *runConfig) {
		if n != 0 {
			c.goroutineCeiling = n
		}
	}
}

// WithStepTimeout bounds each nemesis step (default 10s).
func WithStepTimeout(d time.Duration) RunOption {
	return func(c *runConfig) {
		if d > 0 {
			c.stepTimeout = d
		}
	}
}

// stepGrace is how long the nemesis waits past a step's deadline for a
// fault driver that ignores its context.
const stepGrace = 100 * time.Millisecond

// Run drives the clients that factory builds through spec's workload in env,
// executes the nemesis schedule, samples, tears the clients down, measures
// leaks and returns the history. It never hangs whatever the client does: it
// ends within Duration + watchdog + teardown and settle bounds.
//
// Run returns an error without a history when the run cannot start (invalid
// spec, unknown service, the factory failed). When ctx is canceled mid-run it
// still tears down, measures and returns the history, with ctx's error.
func Run(ctx context.Context, env Environment, factory ClientFactory, spec RunSpec, opts ...RunOption) (*History, error) {
	cfg := defaultRunConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if env == nil {
		return nil, fmt.Errorf("%w: no environment: pass one, e.g. from NewEmbedded", ErrInvalidRun)
	}
	if factory == nil {
		return nil, fmt.Errorf("%w: no client factory: pass a func(Service) (Client, error)", ErrInvalidRun)
	}
	raiseFDLimit()
	w := spec.Workload.withDefaults()
	if err := w.validate(); err != nil {
		return nil, fmt.Errorf("scenario %q: %w", spec.Scenario, err)
	}
	names := w.services()
	endpoints := make(map[string]Service, len(names))
	for _, s := range env.Services() {
		endpoints[s.Name] = s
	}
	bases := make(map[string]string, len(names))
	for _, n := range names {
		s, ok := endpoints[n]
		if !ok {
			return nil, fmt.Errorf("scenario %q: %s in the mix: %w (environment %s)", spec.Scenario, n, ErrUnknownService, env.Name())
		}
		bases[n] = s.BaseURL
	}
	watchdog := cfg.watchdog
	if watchdog == 0 {
		for _, n := range names {
			w := UndeclaredWatchdog
			if rt := spec.Profile.For(n).RequestTimeout; rt > 0 {
				w = rt*time.Duration(cfg.watchdogFactor) + cfg.watchdogMargin
			}
			watchdog = max(watchdog, w)
		}
	}

	prefix := requestIDPrefix(spec.Scenario, spec.Seed)
	h := &History{
		Version:         HistoryVersion,
		Scenario:        spec.Scenario,
		Seed:            spec.Seed,
		Environment:     env.Name(),
		Workload:        w,
		Profile:         spec.Profile,
		Services:        names,
		RequestIDPrefix: prefix,
		Watchdog:        watchdog,
		Protocol:        cmp.Or(spec.Protocol, ProtocolHTTP1),
		CPUs:            cpuload.CPUs(),
	}

	// Bounded background context for the harness's own calls (observe,
	// teardown, leak measurement): they must run even when ctx is canceled.
	bg := context.WithoutCancel(ctx)

	// The services offer the run's protocol to the connections the client
	// is about to open; a service that cannot say (not a fake service)
	// serves what it serves, and the record says so.
	protocolSteps, controlled := offerProtocol(bg, env, names, h.Protocol, cfg.stepTimeout)
	if !controlled {
		h.Protocol = ProtocolAsServed
	}

	// Warm up the observation path before the baseline, so the connections
	// and goroutines the harness itself uses to observe are part of it.
	truthOK := make(map[string]bool, len(names))
	for _, n := range names {
		octx, cancel := context.WithTimeout(bg, cfg.observeTimeout)
		_, err := env.Observe(octx, n)
		cancel()
		truthOK[n] = err == nil
	}

	baseline := goleak.IgnoreCurrent()
	h.Leaks.GoroutineBaseline = runtime.NumGoroutine()
	fdBase, fdOK := procfd.Count()

	// Every goroutine the client starts, from its construction to the end
	// of the workload, carries the run's label (see labelledGoroutines).
	label := newRunLabel(prefix)
	clients := make(map[string]Client, len(names))
	var buildErr error
	withRunLabel(ctx, label, func(context.Context) {
		for _, n := range names {
			c, err := factory(endpoints[n])
			if err == nil && c == nil {
				err = errors.New("the factory returned a nil client and no error")
			}
			if err != nil {
				buildErr = fmt.Errorf("scenario %q: building the client for %s: %w", spec.Scenario, n, err)
				return
			}
			clients[n] = c
		}
	})
	if buildErr != nil {
		teardownClients(bg, clients, cfg.teardownTimeout, nil)
		return nil, buildErr
	}

	r := &runner{
		cfg:      cfg,
		spec:     spec,
		w:        w,
		env:      env,
		plan:     newPlan(spec.Seed, prefix, w, bases),
		rec:      NewRecorder(),
		watchdog: watchdog,
		truthOK:  truthOK,
		names:    names,
		baseG:    h.Leaks.GoroutineBaseline,
		fdBase:   fdBase,
		ceilings: cfg.ceilings(fdBase, fdOK),
	}
	for n, c := range clients {
		r.clients[ServiceIDOf(n)] = c
	}
	// Calls carry one context for the whole run, canceled only when ctx is
	// or once everything is measured. The harness never cancels a call's
	// context when the call completes: net/http would then close the
	// connection of any response body the client leaked, hiding the very
	// leak the checks look for. A hung call is abandoned, not canceled.
	callsCtx, cancelCalls := context.WithCancel(ctx)
	defer cancelCalls()
	if cfg.observer != nil {
		cfg.observer.RunStarted(spec.Scenario, names)
	}
	h.Started = time.Now()
	withRunLabel(callsCtx, label, r.execute)

	h.Calls, h.ErrorTexts = r.rec.Calls()
	h.Steps = append(protocolSteps, r.steps...)
	h.Samples = r.samples
	h.Dropped = r.dropped.Load()
	h.StoppedEarly = r.stoppedEarly.Load()
	for _, c := range h.Calls {
		h.Elapsed = max(h.Elapsed, time.Duration(c.End))
	}

	h.ServerAfterRun = make(map[string]ServerTruth, len(names))
	for _, n := range names {
		h.ServerAfterRun[n] = observeTruth(bg, env, n, cfg.observeTimeout)
	}
	observeReplicas(bg, env, names, h.ServerAfterRun, cfg.observeTimeout)

	pool := make(map[string]int, len(names))
	for _, n := range names {
		pool[n] = cmp.Or(spec.Profile.For(n).MaxConns, UndeclaredPoolBound(w))
	}
	reporters, reported := leakReporters(clients)
	in := leakInputs{
		env:             env,
		label:           label,
		truthOK:         truthOK,
		pool:            pool,
		baseline:        baseline,
		baseG:           h.Leaks.GoroutineBaseline,
		fdBase:          fdBase,
		fdOK:            fdOK,
		fdTolerance:     cfg.fdTolerance,
		threadTolerance: cfg.threadTolerance,
		settle:          cfg.settle,
		observe:         cfg.observeTimeout,
	}
	for _, n := range names {
		if !reported[n] {
			in.services = append(in.services, n)
		}
	}
	var outside *LeakRecord
	h.Teardown = teardownClients(bg, clients, cfg.teardownTimeout, func(idle []TeardownCall) {
		if len(reporters) == 0 {
			return
		}
		// A child process's exit closes every socket it holds, leaked or
		// not: the servers' connections and the child's own counts are
		// read after its idle close, while it still runs, and only then
		// do the servers close their idle connections.
		o := in
		o.services, o.reporters = nil, reporters
		for _, n := range names {
			if reported[n] {
				o.services = append(o.services, n)
			}
		}
		o.closedIdle = closedOwnIdle(clients, idle)
		rec := measureOutside(bg, o)
		outside = &rec
	})
	h.AbandonedAtEnd = int(r.running.Load())
	in.closedIdle = closedOwnIdle(clients, h.Teardown)
	h.Leaks = measureLeaks(bg, in, outside)
	if err := ctx.Err(); err != nil {
		return h, fmt.Errorf("scenario %q seed %d: run interrupted after %d calls: %w", spec.Scenario, spec.Seed, len(h.Calls), err)
	}
	return h, nil
}

// offerProtocol makes every service offer protocol to new connections
// before the workload starts. A failure is recorded as a failed step at
// offset 0, so the run is not judged as if it had the protocol; controlled
// is false when some service is not a fake service and serves what it
// serves.
func offerProtocol(ctx context.Context, env Environment, services []string, protocol string, timeout time.Duration) (failed []StepRecord, controlled bool) {
	faults := env.Faults()
	if faults == nil {
		return nil, false
	}
	controlled = true
	for _, svc := range services {
		st := Step{Label: "offer " + protocol + " on " + svc, Action: SetProtocol(svc, protocol)}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := faults.Apply(sctx, st.Action)
		cancel()
		switch {
		case errors.Is(err, ErrNoServerTruth):
			controlled = false
		case err != nil:
			failed = append(failed, StepRecord{Step: st, Outcome: StepFailed, Err: err.Error()})
		}
	}
	return failed, controlled
}

func observeTruth(ctx context.Context, env Environment, service string, timeout time.Duration) ServerTruth {
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := env.Observe(octx, service)
	if err != nil {
		return ServerTruth{Err: err.Error()}
	}
	return ServerTruth{Available: true, Stats: &st}
}

// runner is the state of one run's workload, nemesis and samplers.
type runner struct {
	cfg      runConfig
	spec     RunSpec
	w        Workload
	env      Environment
	plan     *plan
	rec      *Recorder
	clients  [len(serviceIDNames)]Client
	watchdog time.Duration
	truthOK  map[string]bool
	names    []string
	cpu      *cpuload.Reader // nil where /proc cannot be read
	baseG    int             // runtime.NumGoroutine() at the baseline
	fdBase   int             // open descriptors at the baseline
	ceilings ceilings

	start    time.Time
	stop     chan struct{} // closed when no more calls may start
	stopOnce sync.Once
	seq      atomic.Uint32
	inFlight atomic.Int64 // started and not yet recorded
	running  atomic.Int64 // call goroutines still running, abandoned ones included
	waiting  atomic.Int64 // harness goroutines waiting on a call (workers, open-loop waiters)
	dropped  atomic.Int64
	lastStep atomic.Pointer[string]

	stoppedEarly atomic.Pointer[EarlyStop]
	stoppedAt    atomic.Int64 // offset (ns) at which halt closed stop

	steps   []StepRecord
	samples []Sample
}

func (r *runner) since() int64 { return int64(time.Since(r.start)) }

func (r *runner) halt() {
	r.stopOnce.Do(func() {
		r.stoppedAt.Store(r.since())
		close(r.stop)
	})
}

// nextSeq hands out call numbers; false when MaxCalls is reached.
func (r *runner) nextSeq() (uint32, bool) {
	s := r.seq.Add(1) - 1
	if r.w.MaxCalls > 0 && int(s) >= r.w.MaxCalls {
		r.halt()
		return 0, false
	}
	return s, true
}

// execute runs the workload, the nemesis and the samplers until the
// workload ends, and waits for all of them.
func (r *runner) execute(ctx context.Context) {
	r.stop = make(chan struct{})
	r.start = time.Now()
	durTimer := time.AfterFunc(r.w.Duration, r.halt)
	defer durTimer.Stop()
	stopOnCancel := context.AfterFunc(ctx, r.halt)
	defer stopOnCancel()

	nemesisCtx, stopNemesis := context.WithCancel(ctx)
	nemesisDone := make(chan struct{})
	go func() {
		defer close(nemesisDone)
		r.steps = r.runNemesis(nemesisCtx)
	}()

	samplerStop := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		r.samples = r.runSampler(ctx, samplerStop)
	}()

	var wg sync.WaitGroup
	switch r.w.Mode {
	case OpenLoop:
		r.openLoop(ctx, &wg)
	default:
		for range r.w.Workers {
			wg.Add(1)
			r.waiting.Add(1)
			go func() {
				defer wg.Done()
				defer r.waiting.Add(-1)
				r.worker(ctx)
			}()
		}
	}
	wg.Wait() // bounded: every call is bounded by the watchdog, every pause by r.stop
	stopNemesis()
	<-nemesisDone // bounded: each step by the step timeout and nemesisCtx
	close(samplerStop)
	<-samplerDone // bounded: each sample by the observe timeout
}

// callSlot is a worker's reusable watchdog timer and result channel.
type callSlot struct {
	done  chan callResult
	timer *time.Timer
}

func newCallSlot() *callSlot {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &callSlot{done: make(chan callResult, 1), timer: t}
}

func (r *runner) worker(ctx context.Context) {
	slot := newCallSlot()
	var think *time.Timer
	if r.w.ThinkTime > 0 {
		think = time.NewTimer(time.Hour)
		think.Stop()
		defer think.Stop()
	}
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		seq, ok := r.nextSeq()
		if !ok {
			return
		}
		r.call(ctx, seq, slot)
		if think != nil {
			think.Reset(r.w.ThinkTime)
			select {
			case <-think.C:
			case <-r.stop:
				return
			}
		}
	}
}

// openLoop starts calls on a fixed schedule (call i is due at i/Rate) until
// the workload ends; a call due while MaxInFlight calls are in flight is
// dropped and counted.
func (r *runner) openLoop(ctx context.Context, wg *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / r.w.Rate)
	if interval <= 0 {
		interval = time.Nanosecond
	}
	tick := time.NewTimer(0)
	defer tick.Stop()
	slots := sync.Pool{New: func() any { return newCallSlot() }}
	for i := int64(0); ; i++ {
		if wait := time.Duration(i)*interval - time.Since(r.start); wait > 0 {
			tick.Reset(wait)
			select {
			case <-tick.C:
			case <-r.stop:
				return
			}
		} else {
			select {
			case <-r.stop:
				return
			default:
			}
		}
		if r.inFlight.Load() >= int64(r.w.MaxInFlight) {
			r.dropped.Add(1)
			continue
		}
		seq, ok := r.nextSeq()
		if !ok {
			return
		}
		wg.Add(1)
		r.waiting.Add(1)
		r.inFlight.Add(1) // counted now so that the cap holds before the goroutine runs
		go func() {
			defer wg.Done()
			defer r.waiting.Add(-1)
			slot := slots.Get().(*callSlot)
			r.callCounted(ctx, seq, slot)
			slots.Put(slot)
		}()
	}
}

func (r *runner) call(ctx context.Context, seq uint32, slot *callSlot) {
	r.inFlight.Add(1)
	r.callCounted(ctx, seq, slot)
}

// callCounted performs call seq, already counted in flight, under the
// watchdog, and records it. When the call is abandoned its goroutine keeps
// the old channel and the slot gets a fresh one, so the slot is always
// reusable afterwards.
func (r *runner) callCounted(ctx context.Context, seq uint32, slot *callSlot) {
	op, param := r.plan.draw(seq)
	rec := CallRecord{Seq: seq, Op: op, Service: op.Service()}
	client := r.clients[rec.Service]
	rec.Start = r.since()
	req, err := r.plan.request(r.w.Caller.callerLimit(r.spec.Seed, seq).context(ctx), seq, op, param)
	if err != nil {
		r.inFlight.Add(-1)
		rec.End = r.since()
		rec.Class = ClassOther
		r.record(rec, err.Error())
		return
	}
	r.running.Add(1)
	done := slot.done
	go func() {
		defer r.running.Add(-1)
		done <- doCall(client, req)
	}()
	slot.timer.Reset(r.watchdog)
	select {
	case res := <-done:
		slot.timer.Stop()
		r.inFlight.Add(-1)
		rec.End = int64(res.end.Sub(r.start))
		rec.Status = int16(res.status)
		rec.Bytes = uint32(min(res.bytes, int64(^uint32(0))))
		rec.Digest = res.digest
		rec.Class = Classify(res.err)
		text := ""
		if res.err != nil {
			text = res.err.Error()
		}
		r.record(rec, text)
		if res.err != nil && errors.Is(res.err, ErrClientGone) {
			r.halt()
		}
	case <-slot.timer.C:
		r.inFlight.Add(-1)
		slot.done = make(chan callResult, 1)
		rec.End = r.since()
		rec.Class = ClassHang
		r.record(rec, fmt.Sprintf("no return within the watchdog (%v): Do or the body read blocked; the call's goroutine was abandoned", r.watchdog))
	}
}

// record keeps one call in the history and shows it to the observer.
func (r *runner) record(rec CallRecord, errText string) {
	r.rec.Record(rec, errText)
	if r.cfg.observer != nil {
		r.cfg.observer.CallRecorded(rec)
	}
}

// sortSteps returns the steps ordered by offset, keeping the given order for ties.
func sortSteps(steps []Step) []Step {
	out := append([]Step(nil), steps...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}
