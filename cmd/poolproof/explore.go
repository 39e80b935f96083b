package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/explore"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/report"
)

func init() {
	register(command{
		name: "explore",
		summary: "search for a failure the catalog misses: run random fault schedules against a client for a time budget, " +
			"shrink each failure to a minimal scenario file; exit 1 when one is found",
		run: runExplore,
	})
}

// Defaults of explore and shrink.
const (
	defaultExploreDir   = "poolproof-explore"
	defaultShrinkDir    = "poolproof-shrink"
	defaultExploreTime  = 5 * time.Minute
	defaultShrinkBudget = 3 * time.Minute
)

// clientFlags are the flags that choose the client and where it runs,
// shared by explore and shrink as certify has them.
type clientFlags struct {
	env       string
	client    string
	driverCmd string
	driver    []string
	contract  string
	http2     bool
	reportDir string
}

func addClientFlags(fs *flag.FlagSet, f *clientFlags, defaultDir string) {
	fs.StringVar(&f.env, "env", env.NameEmbedded, "environment: embedded (the default: fake services and Toxiproxy in this process), docker or remote, as for certify")
	fs.StringVar(&f.client, "client", clientReference, "client to run: reference, plain, retrying or a broken client of the gallery (poolproof list clients)")
	fs.StringVar(&f.driverCmd, "driver", "", "run a client in any language: the command that runs its driver (docs/driver-protocol.md), as for certify")
	fs.StringVar(&f.contract, "contract", "", "contract file the client is held to (JSON or YAML, as for certify)")
	fs.BoolVar(&f.http2, "http2", false, "the client speaks HTTP/2: each case runs on HTTP/1.1 and on HTTP/2")
	fs.StringVar(&f.reportDir, "o", defaultDir, "folder for the scenario files (case-<check>.yaml, shrunk-<check>.yaml) and the reports (report.html, junit.xml, summary.md, histories/) as certify writes them")
}

// clientSetup is a client to run, opened on its environment.
type clientSetup struct {
	env     harness.Environment
	factory harness.ClientFactory
	profile harness.Profile
	label   func() string
	close   func()
}

// check validates the flags that need no environment.
func (f *clientFlags) check(fs *flag.FlagSet, verb string) error {
	if !slices.Contains(env.Names, f.env) {
		return usageError{fmt.Sprintf("-env %q: use one of %s", f.env, strings.Join(env.Names, ", "))}
	}
	var err error
	f.driver, err = driverCommand(fs, f.driverCmd, verb)
	if err != nil {
		return err
	}
	if f.reportDir == "" || f.reportDir == "-" {
		return usageError{"-o: give a folder for the scenario files, e.g. -o " + defaultExploreDir}
	}
	return nil
}

// open picks the client, reads its contract and opens the environment.
// The returned code is the exit code when err is not nil.
func (f *clientFlags) open(ctx context.Context, stderr io.Writer) (clientSetup, int, error) {
	cs := clientSetup{profile: harness.DefaultProfile(), close: func() {}}
	var err error
	if f.driver == nil {
		if cs.factory, cs.profile, err = selectClient(f.client); err != nil {
			return cs, 2, err
		}
	}
	if f.contract != "" {
		if cs.profile, err = harness.LoadProfile(f.contract); err != nil {
			return cs, 2, fmt.Errorf("-contract: %w", err)
		}
	}
	cs.profile.HTTP2 = cs.profile.HTTP2 || f.http2
	if err := os.MkdirAll(f.reportDir, 0o755); err != nil {
		return cs, 2, fmt.Errorf("-o %s: %w: choose a folder you can write to", f.reportDir, err)
	}
	if f.env != env.NameEmbedded {
		fmt.Fprintf(stderr, "poolproof: starting the %s environment\n", f.env)
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	e, err := env.Open(ctx, f.env)
	if err != nil {
		if environmentUnusable(err) {
			return cs, 2, fmt.Errorf("-env %s: %s", f.env, oneLine(err))
		}
		return cs, 1, fmt.Errorf("-env %s: %s", f.env, oneLine(err))
	}
	cs.env = e
	client := f.client
	cs.label = func() string { return client }
	cs.close = func() { _ = e.Close() }
	if f.driver != nil {
		drv := driver.NewFactory(ctx, f.driver, e.Services(), cs.profile)
		cs.factory = drv.Client
		words := f.driver
		cs.label = func() string {
			if drv.Info() != (driver.Info{}) {
				return "driver " + drv.Info().String()
			}
			return fmt.Sprintf("driver %q", strings.Join(words, " "))
		}
		cs.close = func() { drv.Close(); _ = e.Close() }
	}
	return cs, 0, nil
}

func (cs clientSetup) runner() explore.CertifyRunner {
	return explore.CertifyRunner{Env: cs.env, Factory: cs.factory, Profile: cs.profile}
}

func runExplore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		f        clientFlags
		opts     explore.Options
		seed     int64
		findings int
	)
	fs := flag.NewFlagSet("poolproof explore", flag.ContinueOnError)
	addClientFlags(fs, &f, defaultExploreDir)
	fs.DurationVar(&opts.Budget, "budget", defaultExploreTime, "how long to run generated cases (shrinking a failure has its own -shrink-budget), e.g. 10m")
	fs.Int64Var(&seed, "seed", 0, "seed of the generator: the same seed generates the same cases (0: one drawn now, printed)")
	fs.IntVar(&findings, "findings", 1, "stop once this many distinct checks failed and were shrunk (0: explore until the budget ends)")
	addShrinkFlags(fs, &opts.Shrink, "shrink-budget")
	fs.BoolVar(&opts.NoShrink, "no-shrink", false, "keep the failing cases as generated")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "poolproof explore: %v\n", err)
		return 2
	}
	err := f.check(fs, "explore")
	switch {
	case err != nil:
	case opts.Budget <= 0:
		err = usageError{"-budget must be positive, e.g. -budget 10m"}
	case findings < 0:
		err = usageError{"-findings must be 0 (until the budget ends) or more"}
	case opts.Shrink.Confirm < 1:
		err = usageError{"-confirm must be at least 1"}
	case opts.Shrink.Final < 0:
		err = usageError{"-final must be 0 or more"}
	}
	if err != nil {
		fmt.Fprintf(stderr, "poolproof explore: %v\n", err)
		return 2
	}
	if opts.Shrink.Final == 0 {
		opts.Shrink.Final = -1 // none
	}
	if seed == 0 {
		seed = time.Now().UnixNano() & (1<<31 - 1)
	}
	opts.Seed, opts.MaxFindings = uint64(seed), findings

	cs, code, err := f.open(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof explore: %v\n", err)
		return code
	}
	defer cs.close()

	fmt.Fprintf(stderr, "poolproof: exploring the %s client on the %s environment for %v, seed %d (replay with -seed %d)\n",
		cs.label(), cs.env.Name(), opts.Budget, seed, seed)
	started := time.Now()
	printCase := exploreProgress(stderr, started)
	opts.Progress = func(ev explore.Event) {
		printCase(ev)
		if ev.Kind == explore.EventShrunk && ev.Finding != nil {
			// Written at once: a long exploration stopped later keeps it.
			if _, err := writeFindings(f.reportDir, cs.label(), clientSetup{}, []explore.Finding{*ev.Finding}, started); err != nil {
				fmt.Fprintf(stderr, "poolproof explore: %v\n", err)
			}
		}
	}
	opts.Shrink.Progress = shrinkProgress(stderr)
	sum := explore.Explore(ctx, cs.runner(), opts)

	client := cs.label()
	written, err := writeFindings(f.reportDir, client, cs, sum.Findings, started)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof explore: %v\n", err)
	}
	printExploreSummary(stdout, client, sum, written)
	if len(sum.Findings) > 0 {
		return 1
	}
	if sum.Interrupted {
		return 1
	}
	return 0
}

// exploreProgress prints a line per case and per finding.
func exploreProgress(w io.Writer, started time.Time) func(explore.Event) {
	return func(ev explore.Event) {
		switch ev.Kind {
		case explore.EventJudged:
			z := explore.SizeOf(ev.Scenario)
			outcome := "passed"
			switch {
			case ev.Outcome.Trouble != "":
				outcome = "not judged: " + ev.Outcome.Trouble
			case len(ev.Outcome.Failed) > 0:
				outcome = "FAILED " + strings.Join(ev.Outcome.Failed, ", ")
			}
			s := ev.Summary
			fmt.Fprintf(w, "[case %d] %s (%s): %s | %d cases, %d failing, %d findings, %d shrink steps, %s\n",
				ev.Index+1, ev.Scenario.Name, z, outcome, s.Cases, s.Failing, len(s.Findings), s.ShrinkSteps, round(time.Since(started)))
		case explore.EventFinding:
			reason := ""
			if v, ok := ev.Outcome.Verdict(ev.Check); ok {
				reason = ": " + v.Reason
			}
			fmt.Fprintf(w, "[case %d] finding: %s fails%s\n          %s\n          shrinking it\n", ev.Index+1, ev.Check, reason, ev.Scenario.Proves)
		case explore.EventShrunk:
			if ev.Shrunk == nil {
				fmt.Fprintf(w, "[case %d] %s: did not fail again on a rerun (a flake): kept as unconfirmed\n", ev.Index+1, ev.Check)
				return
			}
			r := ev.Shrunk
			fmt.Fprintf(w, "[case %d] %s shrunk in %s (%d reductions tried, %d kept): %s -> %s; failed %d of %d final reruns%s\n",
				ev.Index+1, ev.Check, round(r.Elapsed), r.Attempts, len(r.Kept), r.Before, r.After, r.FinalFailed, r.FinalRuns, steppedBack(*r))
		}
	}
}

// shrinkProgress prints a line per reduction tried.
func shrinkProgress(w io.Writer) func(explore.ShrinkStep) {
	return func(st explore.ShrinkStep) {
		verdict := "no: it passed"
		if st.Kept {
			verdict = "kept"
		}
		fmt.Fprintf(w, "          shrink %d: %s: %s (%d runs) -> %s, %s\n", st.Attempt, st.What, verdict, st.Runs, st.Size, round(st.Elapsed))
	}
}

// writeFindings writes each finding's case and shrunk scenario as
// scenario files, and a report of their failing runs as certify writes
// one. It returns the files written per finding, in order.
func writeFindings(dir, client string, cs clientSetup, findings []explore.Finding, started time.Time) ([][]string, error) {
	var (
		written = make([][]string, len(findings))
		errs    []error
		results []harness.ScenarioResult
	)
	for i, fd := range findings {
		base := strings.ReplaceAll(fd.Check, "/", "_")
		casePath := filepath.Join(dir, "case-"+base+".yaml")
		comment := []string{
			fmt.Sprintf("client %s failed %s on this generated case (case %d of the exploration, after %d cases).", client, fd.Check, fd.Index+1, fd.CasesRun),
			"Replay: poolproof certify -profile none -scenarios " + casePath,
		}
		if err := explore.WriteFile(casePath, fd.Case, comment...); err != nil {
			errs = append(errs, err)
		} else {
			written[i] = append(written[i], casePath)
		}
		if cert := fd.Outcome.Certificate; cert != nil {
			for _, r := range cert.Results {
				if !slices.ContainsFunc(results, func(o harness.ScenarioResult) bool { return o.Scenario == r.Scenario }) {
					results = append(results, r)
				}
			}
		}
		if fd.Shrink == nil {
			continue
		}
		path, res, err := writeShrunk(dir, client, *fd.Shrink)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		written[i] = append(written[i], path)
		results = append(results, res...)
	}
	if err := writeReport(dir, client, cs, results, started); err != nil {
		errs = append(errs, err)
	}
	return written, errors.Join(errs...)
}

// writeReport writes the runs' results as certify writes its report;
// nothing when there are none.
func writeReport(dir, client string, cs clientSetup, results []harness.ScenarioResult, started time.Time) error {
	if len(results) == 0 || cs.env == nil {
		return nil
	}
	cert := &harness.Certificate{Profile: cs.profile, Environment: cs.env.Name(), Started: started, Elapsed: time.Since(started), Results: results}
	if _, err := report.Write(dir, cert, report.Meta{Client: client, Generated: time.Now()}); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// writeShrunk writes a shrink's result as shrunk-<check>.yaml, named after
// the check, with the sentence that says what the minimal failure is; it
// returns the path and the last failing run's results, renamed so a report
// tells them from the original case's.
func writeShrunk(dir, client string, res explore.ShrinkResult) (string, []harness.ScenarioResult, error) {
	name := "shrunk-" + strings.ReplaceAll(res.Check, "/", "_")
	path := filepath.Join(dir, name+".yaml")
	s := res.Shrunk
	s.Name = name
	if s.Name == res.Original.Name {
		s.Name += "-again"
	}
	sentence := explore.Sentence(client, res)
	s.Proves = "the shrunk failure: " + sentence
	comment := []string{
		sentence + ".",
		fmt.Sprintf("Shrunk from %s (%s) to %s in %d reductions tried; it failed %s in %d of %d final reruns.",
			res.Original.Name, res.Before, res.After, res.Attempts, res.Check, res.FinalFailed, res.FinalRuns),
		"Replay: poolproof certify -profile none -scenarios " + path,
	}
	if err := explore.WriteFile(path, s, comment...); err != nil {
		return "", nil, err
	}
	var out []harness.ScenarioResult
	if cert := res.Last.Certificate; cert != nil {
		for _, r := range cert.Results {
			r.Scenario = s.Name + strings.TrimPrefix(r.Scenario, res.Shrunk.Name)
			out = append(out, r)
		}
	}
	return path, out, nil
}

func printExploreSummary(w io.Writer, client string, sum explore.Summary, written [][]string) {
	state := "explored"
	if sum.Interrupted {
		state = "interrupted after exploring"
	}
	fmt.Fprintf(w, "\n%s the %s client for %s, seed %d: %d cases judged (%d failing, %d not judged), %d findings, %d shrink steps\n",
		state, client, round(sum.Elapsed), sum.Seed, sum.Cases, sum.Failing, sum.Troubled, len(sum.Findings), sum.ShrinkSteps)
	if len(sum.Findings) == 0 {
		fmt.Fprintln(w, "no failure found")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\nCHECK\tFOUND AT CASE\tBEFORE\tAFTER\tFINAL RERUNS FAILED\tFILES")
		for i, f := range sum.Findings {
			before, after, final := explore.SizeOf(f.Case).String(), "not shrunk", "-"
			if f.Shrink != nil {
				after = f.Shrink.After.String()
				final = fmt.Sprintf("%d of %d", f.Shrink.FinalFailed, f.Shrink.FinalRuns)
			} else if f.ShrinkErr != "" {
				after = "not shrunk: " + f.ShrinkErr
			}
			var files []string
			if i < len(written) {
				files = written[i]
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", f.Check, f.CasesRun, before, after, final, strings.Join(files, " "))
		}
		_ = tw.Flush()
		for _, f := range sum.Findings {
			if f.Shrink != nil {
				fmt.Fprintf(w, "\n%s\n", explore.Sentence(client, *f.Shrink))
			}
		}
	}
	for _, u := range sum.Unconfirmed {
		fmt.Fprintf(w, "unconfirmed: %s failed once on case %d (%s) and passed its rerun\n", u.Check, u.Index+1, u.Case.Name)
	}
}

// steppedBack notes the reductions the final reruns undid.
func steppedBack(r explore.ShrinkResult) string {
	if r.SteppedBack == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d reductions undone: they did not fail every final rerun)", r.SteppedBack)
}
