package harness

import (
	"context"
	"errors"

	"github.com/poolproof/poolproof/fakeservers"
)

// ErrNoServerTruth is returned by Environment.Observe when the upstream is not
// a poolproof fake service, so server-side truth cannot be read; checks that
// need it report "not applicable", never "passed".
var ErrNoServerTruth = errors.New("no server-side truth: the upstream is not a poolproof fake service")

// Environment provides endpoints, fault handles and observations for a run.
// It never judges. Embedded, docker and remote environments all implement it,
// so a scenario runs unchanged on each.
type Environment interface {
	// Name is "embedded", "docker" or "remote".
	Name() string
	// Services lists the endpoints a client reaches, through Toxiproxy.
	Services() []Service
	// Faults is the fault driver: Toxiproxy's API and the fake services' admin API.
	Faults() *FaultDriver
	// Observe reads the server-side truth of one service, or ErrNoServerTruth.
	Observe(ctx context.Context, service string) (fakeservers.Stats, error)
	// Reset returns the environment to a clean state between scenarios: no
	// toxics, proxies enabled, no HTTP faults, default keep-alive, server
	// history forgotten.
	Reset(ctx context.Context) error
	// GoroutineIgnores names the functions that mark a goroutine as the
	// environment's own (fake servers, Toxiproxy) wherever they appear in
	// its stack, to tell them apart from the client's for the goroutine
	// leak check.
	GoroutineIgnores() []string
	// Close stops everything the environment started.
	Close() error
}
