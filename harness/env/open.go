package env

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/poolproof/poolproof/harness"
)

// Environment names accepted by Open.
const (
	NameEmbedded = "embedded"
	NameDocker   = "docker"
	NameRemote   = "remote"
)

// Names lists the environments Open can start, the default first.
var Names = []string{NameEmbedded, NameDocker, NameRemote}

// ErrUnknown is returned by Open for a name that is not one of Names.
var ErrUnknown = errors.New("unknown environment")

// Open starts the named environment: embedded in this process, docker
// through testcontainers-go, or remote on the Toxiproxy and services that
// WithRemote names (else the POOLPROOF_* variables RemoteConfigFromEnv
// reads). The suites and the CLI both select environments through it, so
// a name and an option mean the same in both.
func Open(ctx context.Context, name string, opts ...Option) (harness.Environment, error) {
	switch name {
	case NameEmbedded, "":
		return NewEmbedded(ctx, opts...)
	case NameDocker:
		return NewDocker(ctx, opts...)
	case NameRemote:
		rc := newConfig(opts).remote
		if rc == nil {
			fromEnv, err := RemoteConfigFromEnv()
			if err != nil {
				return nil, err
			}
			rc = &fromEnv
		}
		return NewRemote(ctx, *rc, opts...)
	}
	return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknown, name, strings.Join(Names, ", "))
}

// Unusable tells an environment the user must fix (exit 2 on the command
// line: no Docker, a bad remote configuration, an unknown name) from one
// that failed while starting.
func Unusable(err error) bool {
	return errors.Is(err, ErrDockerUnavailable) || errors.Is(err, ErrInvalidRemoteConfig) ||
		errors.Is(err, ErrToxiproxyUnreachable) || errors.Is(err, ErrUnknown)
}
