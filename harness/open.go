package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Environment names accepted by OpenEnvironment.
const (
	EnvEmbedded = "embedded"
	EnvDocker   = "docker"
	EnvRemote   = "remote"
)

// EnvironmentNames lists the environments OpenEnvironment can start, the
// default first.
var EnvironmentNames = []string{EnvEmbedded, EnvDocker, EnvRemote}

// ErrUnknownEnvironment is returned by OpenEnvironment for a name that is not
// one of EnvironmentNames.
var ErrUnknownEnvironment = errors.New("unknown environment")

// OpenEnvironment starts the named environment with its defaults: embedded
// in this process, docker through testcontainers-go, or remote from the
// POOLPROOF_* variables that RemoteConfigFromEnv reads. The suites and the
// CLI both select environments through it, so a name means the same in both.
func OpenEnvironment(ctx context.Context, name string) (Environment, error) {
	switch name {
	case EnvEmbedded, "":
		return NewEmbedded(ctx)
	case EnvDocker:
		return NewDocker(ctx)
	case EnvRemote:
		cfg, err := RemoteConfigFromEnv()
		if err != nil {
			return nil, err
		}
		return NewRemote(ctx, cfg)
	}
	return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownEnvironment, name, strings.Join(EnvironmentNames, ", "))
}
