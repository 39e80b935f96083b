package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/poolproof/poolproof/brokenclients"
	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/examples/retryingclient"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/reference"
	"github.com/poolproof/poolproof/report"
	"github.com/poolproof/poolproof/scenarios"
)

func init() {
	register(command{
		name:    "certify",
		summary: "certify a client: run the scenario catalog, print a scorecard; exit 1 when any check fails",
		run:     runCertify,
	})
}

// Client names that are not in the broken-client gallery.
const (
	clientReference = "reference"
	clientPlain     = "plain"
	clientRetrying  = "retrying"
)

// certifyFlags are the certify command's options, parsed and checked.
type certifyFlags struct {
	env       string
	profile   string
	scenarios string
	// scenarioFiles are the -scenarios files, run beside the profile's
	// catalog (instead of it with -profile none).
	scenarioFiles pathList
	client        string
	driver        []string // the driver's command line, split; nil for a built-in client
	contract      string
	seed          int64
	reportDir     string
	http2         bool
	proxy         proxyFlags
	metrics       string // -metrics-addr
	// runOpts are passed to every run: set by runCertify, not a flag.
	runOpts []harness.RunOption
}

func runCertify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseCertifyFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "poolproof certify: %v\n", err)
		return 2
	}
	catalog, err := selectCertifyScenarios(f)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof certify: %v\n", err)
		return 2
	}
	var (
		factory harness.ClientFactory
		profile = harness.DefaultProfile() // what a driver declaring nothing is held to, as the plain client
	)
	if f.driver == nil {
		if factory, profile, err = selectClient(f.client); err != nil {
			fmt.Fprintf(stderr, "poolproof certify: %v\n", err)
			return 2
		}
	}
	if f.contract != "" {
		if profile, err = harness.LoadProfile(f.contract); err != nil {
			fmt.Fprintf(stderr, "poolproof certify: -contract: %v\n", err)
			return 2
		}
	}
	profile.HTTP2 = profile.HTTP2 || f.http2
	var stopMetrics func()
	if f.runOpts, stopMetrics, err = serveMetrics(f.metrics, stderr); err != nil {
		fmt.Fprintf(stderr, "poolproof certify: %v\n", err)
		return 2
	}
	defer stopMetrics()
	if f.reportDir != "" { // fail now, not after a run of minutes
		if err := os.MkdirAll(f.reportDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "poolproof certify: -report %s: %v: choose a folder you can write to\n", f.reportDir, err)
			return 2
		}
	}

	if f.env != env.NameEmbedded {
		fmt.Fprintf(stderr, "poolproof: starting the %s environment\n", f.env)
		// testcontainers greets the Docker daemon on stderr; the progress
		// lines are what a person follows here.
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	if f.proxy.kind != "" {
		return certifyProxy(ctx, f, catalog, factory, profile, stdout, stderr)
	}
	e, err := env.Open(ctx, f.env)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof certify: -env %s: %v\n", f.env, oneLine(err))
		if environmentUnusable(err) {
			return 2
		}
		return 1
	}
	defer e.Close()
	label := func() string { return certified(f) }
	if f.driver != nil {
		// One driver process per scenario, for every service of the
		// environment; the deferred Close ends one an interrupt left.
		drv := driver.NewFactory(ctx, f.driver, e.Services(), profile)
		defer drv.Close()
		factory = drv.Client
		label = func() string {
			if drv.Info() != (driver.Info{}) {
				return "driver " + drv.Info().String()
			}
			return fmt.Sprintf("driver %q", strings.Join(f.driver, " "))
		}
	}

	runs := harness.Runs(catalog, profile)
	fmt.Fprintf(stderr, "poolproof: certifying the %s client, %s profile, %d scenarios (%d runs) on the %s environment, about %s\n",
		label(), f.profile, len(catalog), len(runs), e.Name(), harness.WallTime(runs).Round(time.Second))
	return certifyOn(ctx, e, f, catalog, factory, profile, label, stdout, stderr)
}

// certifyOn certifies on e, prints the scorecard and writes the report;
// it returns the exit code.
// label names what was certified, asked once the run is over (a driver
// says its name and library when it starts).
func certifyOn(ctx context.Context, e harness.Environment, f certifyFlags, catalog []harness.Scenario, factory harness.ClientFactory, profile harness.Profile, label func() string, stdout, stderr io.Writer) int {
	progress := newProgressPrinter(stderr)
	opts := []harness.CertifyOption{harness.WithCertifyProgress(progress.update)}
	if f.seed != 0 {
		opts = append(opts, harness.WithSeed(f.seed))
	}
	if len(f.runOpts) > 0 {
		opts = append(opts, harness.WithRunOptions(f.runOpts...))
	}
	cert, certErr := harness.Certify(ctx, e, factory, profile, catalog, opts...)
	if cert == nil {
		fmt.Fprintf(stderr, "poolproof certify: %v\n", certErr)
		return 1
	}
	client := label()
	_ = report.WriteScorecard(stdout, cert, report.Meta{Client: client})
	if f.reportDir != "" {
		files, err := report.Write(f.reportDir, cert, report.Meta{Client: client, Generated: time.Now()})
		if err != nil {
			fmt.Fprintf(stderr, "poolproof certify: writing the report: %v\n", err)
			return 1
		}
		printReportFiles(stdout, f.reportDir, files)
	}
	if certErr != nil {
		fmt.Fprintf(stderr, "poolproof certify: %v\n", certErr)
		return 1
	}
	if !cert.Passed() {
		return 1
	}
	return 0
}

func parseCertifyFlags(args []string, stdout io.Writer) (certifyFlags, error) {
	var f certifyFlags
	fs := flag.NewFlagSet("poolproof certify", flag.ContinueOnError)
	fs.StringVar(&f.env, "env", env.NameEmbedded, "environment: embedded (fake services and Toxiproxy in this process), docker (containers built here, needs Docker) or remote (an existing Toxiproxy and services named by POOLPROOF_TOXIPROXY_URL, POOLPROOF_UPSTREAM_<SERVICE>, POOLPROOF_ADMIN_<SERVICE>, POOLPROOF_CA_FILE)")
	fs.StringVar(&f.profile, "profile", "standard", "scenario profile: quick (a short subset, ~10s), standard (every scenario, ~1 min), soak (standard four times longer, for nightly runs) or none (only the -scenarios files)")
	fs.Var(&f.scenarioFiles, "scenarios", "scenario files (JSON or YAML, docs/scenario-file.md), comma-separated or the flag repeated: their scenarios run after the profile's, or alone with -profile none; a bad file is refused before anything runs")
	fs.StringVar(&f.scenarios, "scenario", "", "comma-separated scenario names or families to run (default: all of the profile and the -scenarios files)")
	fs.StringVar(&f.client, "client", clientReference, "client to certify: reference, plain (http.Client with Go's defaults), retrying (examples/retryingclient: a correct retrying client on net/http) or a broken client of the gallery ("+strings.Join(galleryNames(), ", ")+")")
	driverCmd := fs.String("driver", "", "certify a client in any language: the command that runs its driver, a program speaking the driver protocol (docs/driver-protocol.md), e.g. \"python3 drivers/python/requests_typical.py\"; quotes group words, nothing else is expanded")
	fs.StringVar(&f.contract, "contract", "", "contract file (JSON or YAML, the shape of harness.Profile: {\"default\": {...}, \"services\": {\"payment\": {...}}}, durations like \"2s\") the client is held to, instead of the built-in client's own or, for a driver, the default contract")
	fs.BoolVar(&f.http2, "http2", false, "the client speaks HTTP/2: certify every scenario on HTTP/1.1 and again on HTTP/2 (runs named <scenario>@h2); without it the services offer HTTP/1.1 only")
	fs.Int64Var(&f.seed, "seed", 0, "seed for every scenario (0: each scenario's own); printed with every verdict, so a run can be replayed")
	addProxyFlags(fs, &f.proxy)
	addMetricsFlag(fs, &f.metrics)
	fs.StringVar(&f.reportDir, "report", defaultReportDir, "folder to write the report in: report.html (scorecard and timelines), junit.xml, summary.md and histories/<scenario>.json.gz (poolproof judge recomputes the verdicts from them); \"\" or - writes none")
	if err := parseFlags(fs, args, stdout); err != nil {
		return f, err
	}
	if f.reportDir == "-" {
		f.reportDir = ""
	}
	if err := checkMetricsAddr(f.metrics); err != nil {
		return f, err
	}
	if !slices.Contains(env.Names, f.env) {
		return f, usageError{fmt.Sprintf("-env %q: use one of %s", f.env, strings.Join(env.Names, ", "))}
	}
	var err error
	if f.driver, err = driverCommand(fs, *driverCmd, "certify"); err != nil {
		return f, err
	}
	if f.driver != nil && f.proxy.kind != "" {
		return f, usageError{"-driver and -proxy both given: a proxy is certified through the reference client"}
	}
	return f, checkProxyFlags(f)
}

// splitCommand splits a command line into words as a shell does for
// blanks, quotes ('...', "...") and backslashes, expanding nothing else:
// the driver is started directly, not through a shell, so that its own
// process is the one measured.
func splitCommand(line string) ([]string, error) {
	var (
		words   []string
		word    strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range line {
		switch {
		case escaped:
			word.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	switch {
	case escaped:
		return nil, errors.New("ends with a backslash")
	case quote != 0:
		return nil, fmt.Errorf("unbalanced %c quote", quote)
	}
	if inWord {
		words = append(words, word.String())
	}
	if len(words) == 0 {
		return nil, errors.New("no command")
	}
	return words, nil
}

// selectScenarios picks the profile's catalog, narrowed to the names or
// families in filter.
func selectScenarios(profile, filter string) ([]harness.Scenario, error) {
	all, err := byProfile(profile, scenarios.Quick, scenarios.Standard, scenarios.Soak)
	if err != nil {
		return nil, err
	}
	return filterScenarios(all, profile+" profile", filter)
}

// byProfile builds the catalog of the named profile.
func byProfile(profile string, quick, standard, soak func() []harness.Scenario) ([]harness.Scenario, error) {
	switch profile {
	case "quick":
		return quick(), nil
	case "standard":
		return standard(), nil
	case "soak":
		return soak(), nil
	}
	return nil, usageError{fmt.Sprintf("-profile %q: use quick, standard or soak (or none, to run only -scenarios files)", profile)}
}

// filterScenarios narrows a catalog to the names or families in filter
// (all of it when filter is empty); where says in errors what the catalog
// is, e.g. "quick profile".
func filterScenarios(all []harness.Scenario, where, filter string) ([]harness.Scenario, error) {
	if strings.TrimSpace(filter) == "" {
		return all, nil
	}
	var picked []harness.Scenario
	for _, want := range strings.Split(filter, ",") {
		want = strings.TrimSpace(want)
		matched := false
		for _, s := range all {
			if s.Name != want && s.Family != want {
				continue
			}
			matched = true
			if !slices.ContainsFunc(picked, func(p harness.Scenario) bool { return p.Name == s.Name }) {
				picked = append(picked, s)
			}
		}
		if !matched {
			names := make([]string, len(all))
			for i, s := range all {
				names[i] = s.Name
			}
			return nil, usageError{fmt.Sprintf("-scenario %q: no scenario or family of that name in the %s; scenarios: %s; families: %s",
				want, where, strings.Join(names, ", "), strings.Join(harness.Families, ", "))}
		}
	}
	return picked, nil
}

// selectClient returns the factory of the named client and the contract it
// is held to. Gallery clients are the reference settings of
// brokenclients.Contract with one bug, so they are held to
// brokenclients.Profile, which only their bug breaks. The plain client is a
// team that declares nothing and keeps Go's defaults: it is held to the
// universal invariants (harness.DefaultProfile).
func selectClient(name string) (harness.ClientFactory, harness.Profile, error) {
	switch name {
	case clientReference:
		return reference.Factory, reference.Profile(), nil
	case clientPlain:
		return plainClient, harness.DefaultProfile(), nil
	case clientRetrying:
		return retryingclient.Factory, retryingclient.Profile(), nil
	}
	e, err := brokenclients.Lookup(name)
	if err != nil {
		return nil, harness.Profile{}, usageError{fmt.Sprintf("-client %q: not a client poolproof knows; use reference, plain, retrying or one of %s", name, strings.Join(galleryNames(), ", "))}
	}
	return e.Factory, e.Profile, nil
}

// plainClient is an http.Client with Go's defaults, trusting the service's CA.
func plainClient(svc harness.Service) (harness.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if svc.CAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}, nil
}

func galleryNames() []string {
	all := brokenclients.All()
	names := make([]string, len(all))
	for i, e := range all {
		names[i] = e.Name
	}
	return names
}

// defaultReportDir is where certify writes its report unless told otherwise.
const defaultReportDir = "poolproof-report"

// printReportFiles lists what the report holds, so a person (or a CI step
// uploading artifacts) knows where to look.
func printReportFiles(w io.Writer, dir string, files report.Files) {
	fmt.Fprintf(w, "\nreport written to %s:\n", dir)
	fmt.Fprintf(w, "  %s\n  %s\n  %s\n", files.HTML, files.JUnit, files.Summary)
	if len(files.Histories) > 0 {
		fmt.Fprintf(w, "  %s (%d histories)\n", filepath.Join(dir, report.HistoriesDir), len(files.Histories))
	}
}

// environmentUnusable tells a bad or unreachable environment (the user's to
// fix: exit 2) from a failure while starting one.
func environmentUnusable(err error) bool {
	return errors.Is(err, env.ErrDockerUnavailable) || errors.Is(err, env.ErrInvalidRemoteConfig) ||
		errors.Is(err, env.ErrToxiproxyUnreachable) || errors.Is(err, env.ErrUnknown)
}

// oneLine keeps an error on one line of the terminal.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
