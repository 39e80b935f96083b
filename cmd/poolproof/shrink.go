package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/explore"
	"github.com/poolproof/poolproof/harness"
)

func init() {
	register(command{
		name: "shrink",
		summary: "reduce a failing scenario file or saved history to the smallest scenario that still fails the same check " +
			"(confirmed by reruns), written as shrunk-<check>.yaml; exit 1 when it fails",
		run: runShrink,
	})
}

func runShrink(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		f       clientFlags
		opts    explore.ShrinkOptions
		checkID string
		name    string
	)
	fs := flag.NewFlagSet("poolproof shrink", flag.ContinueOnError)
	addClientFlags(fs, &f, defaultShrinkDir)
	fs.StringVar(&checkID, "check", "", "the check to keep failing (default: the first check that fails on the first run)")
	fs.StringVar(&name, "scenario", "", "the scenario of the file to shrink, when it holds several (default: the first that fails)")
	addShrinkFlags(fs, &opts, "budget")
	flags, paths := splitPaths(fs, args)
	if err := parseFlags(fs, flags, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "\nFILE is a scenario file (JSON or YAML, docs/scenario-file.md) or a saved history (.json.gz from a report's histories/)")
			return 0
		}
		fmt.Fprintf(stderr, "poolproof shrink: %v\n", err)
		return 2
	}
	err := f.check(fs, "shrink")
	switch {
	case err != nil:
	case len(paths) != 1:
		err = usageError{"give one FILE to shrink: a scenario file or a saved history, e.g. poolproof shrink -client no-timeouts case.yaml"}
	case opts.Budget <= 0:
		err = usageError{"-budget must be positive, e.g. -budget 3m"}
	case opts.Confirm < 1:
		err = usageError{"-confirm must be at least 1"}
	case opts.Final < 0:
		err = usageError{"-final must be 0 or more"}
	case checkID != "" && !slices.Contains(harness.RegisteredChecks(), checkID):
		err = usageError{fmt.Sprintf("-check %q is not a check: use one of %s", checkID, strings.Join(harness.RegisteredChecks(), ", "))}
	}
	if err != nil {
		fmt.Fprintf(stderr, "poolproof shrink: %v\n", err)
		return 2
	}
	if opts.Final == 0 {
		opts.Final = -1
	}
	loaded, err := explore.LoadCase(paths[0])
	if err != nil {
		fmt.Fprintf(stderr, "poolproof shrink: %s\n", oneLine(err))
		return 2
	}
	if name != "" {
		loaded = slices.DeleteFunc(loaded, func(s harness.Scenario) bool { return s.Name != name })
		if len(loaded) == 0 {
			fmt.Fprintf(stderr, "poolproof shrink: -scenario %q: no scenario of that name in %s\n", name, paths[0])
			return 2
		}
	}
	if checkID != "" {
		loaded = slices.DeleteFunc(loaded, func(s harness.Scenario) bool { return !slices.Contains(s.CheckIDs(), checkID) })
		if len(loaded) == 0 {
			fmt.Fprintf(stderr, "poolproof shrink: -check %s: no scenario of %s runs that check: add it to the scenario's checks\n", checkID, paths[0])
			return 2
		}
	}

	cs, code, err := f.open(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof shrink: %v\n", err)
		return code
	}
	defer cs.close()
	runner := cs.runner()
	started := time.Now()

	// Find the scenario and check to shrink: the first that fails.
	var (
		target harness.Scenario
		first  explore.Outcome
		found  bool
	)
	for _, s := range loaded {
		fmt.Fprintf(stderr, "poolproof: running %s (%s) against the %s client\n", s.Name, explore.SizeOf(s), cs.label())
		out, err := runner.Run(ctx, s)
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "poolproof shrink: interrupted before anything was shrunk")
			return 1
		}
		if err != nil || out.Trouble != "" {
			fmt.Fprintf(stderr, "poolproof: %s could not be judged: %s\n", s.Name, oneLine(errors.Join(err, errors.New(out.Trouble))))
			continue
		}
		switch {
		case checkID != "" && out.FailedCheck(checkID):
		case checkID == "" && len(out.Failed) > 0:
			checkID = out.Failed[0]
		default:
			fmt.Fprintf(stderr, "poolproof: %s passed%s\n", s.Name, checkNote(checkID))
			continue
		}
		target, first, found = s, out, true
		break
	}
	if !found {
		fmt.Fprintf(stdout, "nothing to shrink: no scenario of %s failed%s on this run (a timing failure may need another try)\n", paths[0], checkNote(checkID))
		return 0
	}
	if v, ok := first.Verdict(checkID); ok {
		fmt.Fprintf(stderr, "poolproof: %s fails %s: %s\npoolproof: shrinking it for at most %v\n", target.Name, checkID, v.Reason, opts.Budget)
	}
	opts.Progress = shrinkProgress(stderr)
	res, err := explore.Shrink(ctx, runner, target, checkID, &first, opts)
	if errors.Is(err, explore.ErrNotReproduced) {
		fmt.Fprintf(stdout, "%s failed %s once and passed its rerun: a flake, nothing shrunk; try -confirm 1 or rerun it\n", target.Name, checkID)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "poolproof shrink: %v\n", err)
		return 1
	}
	client := cs.label()
	path, results, err := writeShrunk(f.reportDir, client, res)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof shrink: %v\n", err)
		return 1
	}
	if first.Certificate != nil {
		results = append(slices.Clone(first.Certificate.Results), results...)
	}
	if err := writeReport(f.reportDir, client, cs, results, started); err != nil {
		fmt.Fprintf(stderr, "poolproof shrink: %v\n", err)
	}
	stopped := ""
	if res.Stopped != "" {
		stopped = " (stopped: " + res.Stopped + ")"
	}
	fmt.Fprintf(stdout, "\n%s.\nshrunk %s from %s to %s in %s, %d reductions tried, %d kept%s; the result failed %s in %d of %d final reruns%s\nwritten to %s\n",
		explore.Sentence(client, res), target.Name, res.Before, res.After, round(res.Elapsed), res.Attempts, len(res.Kept), stopped,
		checkID, res.FinalFailed, res.FinalRuns, steppedBack(res), path)
	return 1
}

func checkNote(id string) string {
	if id == "" {
		return ""
	}
	return " " + id
}

// addShrinkFlags declares the flags of a shrink, explore's and shrink's
// alike; budget names the flag of the shrink's time budget.
func addShrinkFlags(fs *flag.FlagSet, opts *explore.ShrinkOptions, budget string) {
	fs.DurationVar(&opts.Budget, budget, defaultShrinkBudget, "how long shrinking one failure may take")
	fs.IntVar(&opts.Confirm, "confirm", 2, "reruns that must all fail the same check for a reduction to be kept (timing can flake)")
	fs.IntVar(&opts.Final, "final", 10, "reruns of the shrunk scenario at the end; when one passes, the shrink steps back to a case that fails them all")
	fs.IntVar(&opts.MaxAttempts, "attempts", 60, "most reductions to try when shrinking one failure")
}
