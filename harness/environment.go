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

// Sentinel errors of environments and their fault handles, for callers
// that branch on them.
var (
	// ErrUnknownService: no Toxiproxy proxy (and no admin API) has that name.
	ErrUnknownService = errors.New("unknown service")
	// ErrUnknownToxic: the proxy has no toxic of that name.
	ErrUnknownToxic = errors.New("unknown toxic")
	// ErrToxicExists: the proxy already has a toxic of that name.
	ErrToxicExists = errors.New("toxic already exists")
	// ErrProxyExists: Toxiproxy already has a proxy of that name.
	ErrProxyExists = errors.New("proxy already exists")
	// ErrInvalidAction: the action is malformed; the message names the field.
	ErrInvalidAction = errors.New("invalid action")
)

// Faults applies nemesis actions. An environment's fault handle is the
// only way a scenario reaches the network and the servers.
type Faults interface {
	Apply(ctx context.Context, a Action) error
}

// Environment provides endpoints, fault handles and observations for a run.
// It never judges. Embedded, docker and remote environments all implement it,
// so a scenario runs unchanged on each.
type Environment interface {
	// Name is "embedded", "docker" or "remote".
	Name() string
	// Services lists the endpoints a client reaches, through Toxiproxy.
	Services() []Service
	// Faults is the environment's fault handle: Toxiproxy's API and the
	// fake services' admin API behind one Apply.
	Faults() Faults
	// Observe reads the server-side truth of one service, or ErrNoServerTruth.
	Observe(ctx context.Context, service string) (fakeservers.Stats, error)
	// Reset returns the environment to a clean state before a run: no
	// toxics, proxies enabled, no HTTP faults, default keep-alive, server
	// history forgotten, and the fake services' fault and jitter draws
	// reseeded from seed (service i of fakeservers.Services gets seed+i), so
	// a run with the same seed replays whatever ran before it, on whichever
	// environment, started by whichever face.
	Reset(ctx context.Context, seed int64) error
	// GoroutineIgnores names the functions that mark a goroutine as the
	// environment's own (fake servers, Toxiproxy) wherever they appear in
	// its stack, to tell them apart from the client's for the goroutine
	// leak check.
	GoroutineIgnores() []string
	// Close stops everything the environment started.
	Close() error
}
