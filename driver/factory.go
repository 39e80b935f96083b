package driver

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/poolproof/poolproof/harness"
)

// Factory builds the clients of a certification from one driver command.
// Its Client method is a harness.ClientFactory that starts one driver
// process per run and hands that same *Process to every service of the
// run.
//
// One process for all services, not one per service, because that is how
// a team's client runs: one process holding a pool per service, where a
// service's outage can starve the others (which the isolation check is
// there to see). The same *Process for every service, not a view per
// service, because the harness then tears it down once and measures its
// leaks once (a client shared by services is torn down once), and a call
// finds its service by its URL. One process per run, not per
// certification, so that every scenario starts from a fresh client, as an
// in-process factory gives, and its leaks are measured against a baseline
// of its own.
type Factory struct {
	ctx      context.Context
	cmd      []string
	services []harness.Service
	profile  harness.Profile
	opts     []Option

	mu       sync.Mutex
	cur      *Process
	served   []string // the services cur was handed to
	last     Info
	startErr error
}

// NewFactory returns the factory of the driver cmd for services (all the
// environment's: init lists them all) held to profile. ctx bounds every
// start: once it ends, no driver is started.
func NewFactory(ctx context.Context, cmd []string, services []harness.Service, profile harness.Profile, opts ...Option) *Factory {
	return &Factory{ctx: ctx, cmd: slices.Clone(cmd), services: slices.Clone(services), profile: profile, opts: opts}
}

// Client is the harness.ClientFactory: the process of the current run, or
// a new one. A run asks for each of its services once, so a service asked
// for again starts the next run's process (the previous one was closed by
// the run's teardown; if not, it is closed now). A driver that failed to
// start is not started again: every later run fails at once with the same
// error, instead of waiting for init_ok again.
func (f *Factory) Client(svc harness.Service) (harness.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, fmt.Errorf("not started again: %w", f.startErr)
	}
	if !slices.ContainsFunc(f.services, func(s harness.Service) bool { return s.Name == svc.Name }) {
		return nil, fmt.Errorf("driver: service %s is not among the services the factory was given", svc.Name)
	}
	if f.cur != nil && (f.cur.Err() != nil || slices.Contains(f.served, svc.Name)) {
		_ = f.cur.Close()
		f.cur, f.served = nil, nil
	}
	if f.cur == nil {
		p, err := Start(f.ctx, f.cmd, f.services, f.profile, f.opts...)
		if err != nil {
			if f.ctx.Err() == nil {
				f.startErr = err
			}
			return nil, err
		}
		f.cur, f.last = p, p.Info()
	}
	f.served = append(f.served, svc.Name)
	return f.cur, nil
}

// Info is what the last driver started said of itself (zero before).
func (f *Factory) Info() Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Close closes the process of an unfinished run, if any.
func (f *Factory) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return nil
	}
	err := f.cur.Close()
	f.cur, f.served = nil, nil
	return err
}
