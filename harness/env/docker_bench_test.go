package env

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/harnesstest"
	"github.com/poolproof/poolproof/internal/testenv"
)

// The docker environment's cost next to the embedded one's, as ratios
// within one run: go test ./harness -run '^$' -bench 'Environment' -benchtime 3x
// (the first docker iteration may include building the binary and images).

type envMaker struct {
	name  string
	start func(context.Context) (harness.Environment, error)
}

var envMakers = []envMaker{
	{"embedded", func(ctx context.Context) (harness.Environment, error) { return NewEmbedded(ctx) }},
	{"docker", func(ctx context.Context) (harness.Environment, error) { return NewDocker(ctx) }},
}

func startOrSkip(b *testing.B, m envMaker) harness.Environment {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DockerStartTimeout)
	defer cancel()
	env, err := m.start(ctx)
	if errors.Is(err, ErrDockerUnavailable) {
		b.Skipf("Docker is unavailable: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	return env
}

func BenchmarkEnvironmentStartClose(b *testing.B) {
	for _, m := range envMakers {
		b.Run(m.name, func(b *testing.B) {
			// Warm caches (the docker images) outside the measurement.
			if err := startOrSkip(b, m).Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := startOrSkip(b, m).Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEnvironmentShortRun(b *testing.B) {
	for _, m := range envMakers {
		b.Run(m.name, func(b *testing.B) {
			env := startOrSkip(b, m)
			b.Cleanup(func() { _ = env.Close() })
			spec := harnesstest.ShortSpec("bench", 1)
			b.ResetTimer()
			var calls int
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if err := env.Reset(ctx, harness.DefaultSeed); err != nil {
					cancel()
					b.Fatal(err)
				}
				h, err := harness.Run(ctx, env, harnesstest.StdClientFactory, spec)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				calls += len(h.Calls)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/run")
		})
	}
}
