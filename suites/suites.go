package suites

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/report"
	"github.com/poolproof/poolproof/scenarios"
)

// Option tunes Certify.
type Option func(*config)

type config struct {
	scenarios []harness.Scenario
	seed      int64
	env       string
	reportDir string
	client    string
	reset     func(context.Context) error
}

// WithScenarios certifies these scenarios instead of scenarios.Standard().
// The last of WithScenarios and WithQuick wins.
func WithScenarios(s []harness.Scenario) Option {
	return func(c *config) { c.scenarios = s }
}

// WithQuick certifies scenarios.Quick(), the short subset for fast feedback.
func WithQuick() Option {
	return func(c *config) { c.scenarios = scenarios.Quick() }
}

// WithSeed replaces every scenario's seed, which seeds both the workload's
// draws and the fake services' fault draws, so a failed run replays with
// the seed its failure names: the same run `poolproof certify -seed N`
// makes.
func WithSeed(seed int64) Option {
	return func(c *config) { c.seed = seed }
}

// WithEnvironment certifies on the named environment (env.NameEmbedded,
// env.NameDocker or env.NameRemote) instead of the default: the
// POOLPROOF_ENV variable when set, else embedded. The scenarios and checks
// are the same on every environment.
func WithEnvironment(name string) Option {
	return func(c *config) { c.env = name }
}

// WithReport writes, once every spec ran, the same report folder as
// `poolproof certify -report DIR`: report.html, junit.xml, summary.md and
// histories/ (each scenario's history, which poolproof judge recomputes the verdicts from). client
// names the client in the report.
func WithReport(dir, client string) Option {
	return func(c *config) { c.reportDir, c.client = dir, client }
}

// WithClientReset calls reset before each scenario, after the environment's
// reset, for a client with process-wide state (a library's global pool or
// breaker) that the factory cannot rebuild; an error fails that scenario
// (harness.WithClientReset).
func WithClientReset(reset func(ctx context.Context) error) Option {
	return func(c *config) { c.reset = reset }
}

// envStartTimeout bounds an environment's start-up: the embedded one starts
// in well under a second, the docker one builds a binary and images first
// (a minute with a cold Go build cache); the margin is for a loaded CI
// machine.
func envStartTimeout(name string) time.Duration {
	if name == env.NameDocker {
		return 5 * time.Minute
	}
	return 30 * time.Second
}

// Certify declares the certification of the clients factory builds against
// profile: an Ordered container that owns one embedded environment, one
// container per scenario family (labelled with the family) and one spec per
// scenario (labelled with the scenario's name, so -ginkgo.label-filter picks
// scenarios or families). Call it at package level:
//
//	var _ = suites.Certify(myFactory, myProfile)
//
// Every spec runs even after another failed (ContinueOnFailure): a
// certification reports every failed check, not only the first. The running
// and judging is harness.Certify, shared with the CLI; this only maps it onto
// Ginkgo.
func Certify(factory harness.ClientFactory, profile harness.Profile, opts ...Option) bool {
	return declare(func(harness.Environment) (harness.ClientFactory, error) {
		// A nil factory is the caller's bug; say so in the first spec
		// instead of as one failed verdict per scenario.
		if factory == nil {
			return nil, errors.New("suites.Certify: factory is nil; pass the function that builds your client")
		}
		return factory, nil
	}, profile, opts...)
}

// CertifyDriver declares the certification of a client in any language
// (see Certify): cmd is the program that runs its driver and its
// arguments, a program speaking the driver protocol
// (docs/driver-protocol.md), e.g. []string{"python3", "my_driver.py"}.
// One driver process serves every service of a scenario, a new one each
// scenario; the driver's goroutines are not applicable, its process's
// descriptors, sockets and threads are judged instead.
//
//	var _ = suites.CertifyDriver([]string{"node", "driver.js"}, myProfile, suites.WithQuick())
func CertifyDriver(cmd []string, profile harness.Profile, opts ...Option) bool {
	return declare(func(e harness.Environment) (harness.ClientFactory, error) {
		if len(cmd) == 0 {
			return nil, errors.New("suites.CertifyDriver: no command; pass the program that runs your driver and its arguments")
		}
		// Not the spec's context: the factory starts a driver per scenario,
		// each start bounded by the protocol's init timeout.
		f := driver.NewFactory(context.Background(), cmd, e.Services(), profile)
		DeferCleanup(f.Close)
		return f.Client, nil
	}, profile, opts...)
}

// declare is Certify with the factory built once the environment runs.
func declare(build func(harness.Environment) (harness.ClientFactory, error), profile harness.Profile, opts ...Option) bool {
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.scenarios == nil {
		cfg.scenarios = scenarios.Standard()
	}
	if cfg.env == "" {
		cfg.env = os.Getenv("POOLPROOF_ENV")
	}
	if cfg.env == "" {
		cfg.env = env.NameEmbedded
	}
	catalog := cfg.scenarios

	return Describe("poolproof certification", Ordered, ContinueOnFailure, Label("poolproof"), func() {
		var (
			e       harness.Environment
			factory harness.ClientFactory
			cert    = &harness.Certificate{Profile: profile, Seed: cfg.seed, Started: time.Now()}
		)

		BeforeAll(func(ctx SpecContext) {
			// An invalid catalog is the caller's bug; say so in the first
			// spec instead of as one failed verdict per scenario.
			for _, s := range catalog {
				Expect(s.Validate()).To(Succeed(), "suites.Certify: scenario %q is invalid; fix it or leave it out of WithScenarios", s.Name)
			}
			startCtx, cancel := context.WithTimeout(ctx, envStartTimeout(cfg.env))
			defer cancel()
			opened, err := env.Open(startCtx, cfg.env)
			Expect(err).NotTo(HaveOccurred(), "suites.Certify: starting the %s environment", cfg.env)
			e = opened
			cert.Environment = e.Name()
			DeferCleanup(e.Close)
			factory, err = build(e)
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(2*envStartTimeout(cfg.env)))

		if cfg.reportDir != "" {
			AfterAll(func() {
				cert.Elapsed = time.Since(cert.Started)
				_, err := report.Write(cfg.reportDir, cert, report.Meta{Client: cfg.client, Generated: time.Now()})
				Expect(err).NotTo(HaveOccurred(), "suites.Certify: writing the report to %s", cfg.reportDir)
			})
		}

		for _, family := range familiesOf(catalog) {
			Describe(family, Label(family), func() {
				for _, s := range catalog {
					if s.Family != family {
						continue
					}
					It(s.Name, Label(s.Name), func(ctx SpecContext) {
						runOne(ctx, e, factory, profile, s, cfg, func(r harness.ScenarioResult) { cert.Results = append(cert.Results, r) })
					}, SpecTimeout(specTimeout(s, profile)))
				}
			})
		}
	})
}

// runOne certifies one scenario, hands its results to record (before any
// failure ends the spec) and fails the spec with every failed verdict.
func runOne(ctx context.Context, e harness.Environment, factory harness.ClientFactory, profile harness.Profile, s harness.Scenario, cfg config, record func(harness.ScenarioResult)) {
	var copts []harness.CertifyOption
	if cfg.seed != 0 {
		copts = append(copts, harness.WithSeed(cfg.seed))
	}
	if cfg.reset != nil {
		copts = append(copts, harness.WithClientReset(cfg.reset))
	}
	cert, err := harness.Certify(ctx, e, factory, profile, []harness.Scenario{s}, copts...)
	if cert != nil {
		for _, r := range cert.Results {
			record(r)
		}
	}
	Expect(err).NotTo(HaveOccurred(), "certifying scenario %q", s.Name)
	Expect(cert).NotTo(BeNil())
	for _, r := range cert.Results {
		AddReportEntry(r.Scenario, fmt.Sprintf("seed %d, %d verdicts, %s", r.Seed, len(r.Verdicts), r.Elapsed.Round(time.Millisecond)))
	}
	if cert.Passed() {
		return
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "scenario %q failed", s.Name)
	for _, v := range cert.Failures() {
		fmt.Fprintf(&msg, "\n  %s", v)
	}
	for _, r := range cert.Results {
		if r.Err != "" {
			fmt.Fprintf(&msg, "\n  run error: %s", r.Err)
		}
	}
	if cert.Interrupted {
		msg.WriteString("\n  interrupted before the scenario finished")
	}
	Fail(msg.String())
}

// specTimeout gives a scenario its own length plus room for reset, idle
// close, the client's timeouts and a loaded machine, so a hung run fails
// with Ginkgo's timeout report instead of hanging the test binary.
func specTimeout(s harness.Scenario, p harness.Profile) time.Duration {
	var slowest time.Duration
	for _, svc := range fakeservers.Services {
		c := p.For(svc)
		if d := c.RequestTimeout + c.RecoveryTime; d > slowest {
			slowest = d
		}
	}
	return 10*s.Workload.Duration + 4*slowest + time.Minute
}

// familiesOf lists the families catalog uses, in harness.Families order,
// then any family harness does not know (Validate rejects those later, but
// they must not silently vanish from the tree).
func familiesOf(catalog []harness.Scenario) []string {
	used := map[string]bool{}
	for _, s := range catalog {
		used[s.Family] = true
	}
	var out []string
	for _, f := range harness.Families {
		if used[f] {
			out = append(out, f)
			delete(used, f)
		}
	}
	for _, s := range catalog {
		if used[s.Family] {
			out = append(out, s.Family)
			delete(used, s.Family)
		}
	}
	return out
}
