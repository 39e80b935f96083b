package harness

import (
	"context"
	"runtime"
	"time"

	"github.com/poolproof/poolproof/internal/cpuload"
	"github.com/poolproof/poolproof/internal/procfd"
)

// ConnectionCounter is an optional Environment extension: a cheap read of
// the open server-side connections of one service. The samplers read it
// every sample (~100ms). Without it they fall back to Environment.Observe,
// which returns the whole request history since the last reset and grows
// with the run: at most every observeEvery samples, and spaced further so
// that observing costs at most 1/observeBudget of the run's wall time.
type ConnectionCounter interface {
	OpenConnections(ctx context.Context, service string) (int, error)
}

const (
	// observeEvery is the fallback cadence, in samples, of reading server
	// connections through Observe.
	observeEvery = 10
	// observeBudget: after an Observe round that took d, the next waits at
	// least d*observeBudget, keeping the fallback under ~2% of wall time.
	observeBudget = 50
)

// runSampler takes a sample every interval until stop is closed, and one
// last sample then. Each sample is bounded: server reads by the sample
// interval (ConnectionCounter) or the observe timeout (Observe fallback).
//
// Goroutines are runtime.NumGoroutine() minus the baseline (taken before the
// client was built, environment idle) minus the harness's own goroutines
// during the run (the workers or open-loop waiters, the call goroutines, the
// sampler and the nemesis). It is cheap enough for every sample, and a
// trend, not a verdict: it still counts the environment's per-connection
// goroutines (the fake servers' and Toxiproxy's). The goroutine leak check
// does not use it; it uses goleak's stack filtering once, after teardown.
func (r *runner) runSampler(ctx context.Context, stop <-chan struct{}) []Sample {
	interval := r.cfg.sampleInterval
	samples := make([]Sample, 0, int(r.w.Duration/interval)+2)
	counter, _ := r.env.(ConnectionCounter)
	if cpu, ok := cpuload.NewReader(); ok {
		r.cpu = cpu
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var nextObserve time.Time
	for i := 0; ; i++ {
		readServer := counter != nil || (i%observeEvery == 0 && !time.Now().Before(nextObserve))
		began := time.Now()
		samples = append(samples, r.sample(ctx, counter, readServer))
		r.checkCeilings(samples[len(samples)-1])
		if r.cfg.observer != nil {
			r.cfg.observer.Sampled(samples[len(samples)-1])
		}
		if readServer && counter == nil {
			nextObserve = began.Add(time.Since(began) * observeBudget)
		}
		if r.cfg.progress != nil {
			r.cfg.progress(r.progress())
		}
		select {
		case <-stop:
			return append(samples, r.sample(ctx, counter, true))
		case <-ticker.C:
		}
	}
}

func (r *runner) sample(ctx context.Context, counter ConnectionCounter, readServer bool) Sample {
	total, _, _ := r.rec.Counts()
	own := r.waiting.Load() + r.running.Load() + 2 // + sampler + nemesis
	s := Sample{
		At:         r.since(),
		Goroutines: int32(int64(runtime.NumGoroutine()) - int64(r.baseGoroutines()) - own),
		FDs:        -1,
		InFlight:   int32(r.inFlight.Load()),
		Abandoned:  int32(r.running.Load() - r.inFlight.Load()),
		Done:       total,
	}
	if s.Abandoned < 0 {
		s.Abandoned = 0
	}
	if n, ok := procfd.Count(); ok {
		s.FDs = int32(n)
	}
	s.Reported = reportedPools(ctx, r.names, func(name string) Client { return r.clients[ServiceIDOf(name)] }, r.cfg.sampleInterval)
	if r.cpu != nil {
		if c, ok := r.cpu.Read(); ok {
			s.CPUBusyMs, s.CPUSelfMs = c.BusyMs, c.SelfMs
		}
	}
	s.ServerConns = make([]int32, len(r.names))
	for i, name := range r.names {
		s.ServerConns[i] = -1
		if !readServer || !r.truthOK[name] {
			continue
		}
		if counter != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.sampleInterval)
			n, err := counter.OpenConnections(cctx, name)
			cancel()
			if err == nil {
				s.ServerConns[i] = int32(n)
			}
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.observeTimeout)
		st, err := r.env.Observe(cctx, name)
		cancel()
		if err == nil {
			s.ServerConns[i] = int32(st.OpenConnections)
		}
	}
	return s
}

func (r *runner) baseGoroutines() int { return r.baseG }

func (r *runner) progress() Progress {
	total, failed, hung := r.rec.Counts()
	p := Progress{
		Scenario: r.spec.Scenario,
		Seed:     r.spec.Seed,
		Elapsed:  time.Since(r.start),
		Calls:    total,
		Failed:   failed,
		Hung:     hung,
		InFlight: r.inFlight.Load(),
		Dropped:  r.dropped.Load(),
	}
	if l := r.lastStep.Load(); l != nil {
		p.Step = *l
	}
	return p
}
