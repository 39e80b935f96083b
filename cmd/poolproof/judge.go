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
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/report"
)

func init() {
	register(command{
		name:    "judge",
		summary: "judge saved histories again (a report folder or history files) and print the scorecard; -rewrite renews the folder's reports",
		run:     runJudge,
	})
}

func runJudge(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("poolproof judge", flag.ContinueOnError)
	rewrite := fs.String("rewrite", "", "write the reports (report.html, junit.xml, summary.md, histories/) of the verdicts judged now into this folder; it may be the report folder judged")
	client := fs.String("client", "", "the client's name in the reports (a saved history does not name it)")
	fs.Usage = func() {}
	// The paths come after the flags: parse them as arguments, not as
	// stray words (parseFlags refuses those).
	flags, paths := splitPaths(fs, args)
	if err := parseFlags(fs, flags, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "\nPATH is a report folder (its histories/) or a history file (.json or .json.gz), one or more")
			return 0
		}
		fmt.Fprintf(stderr, "poolproof judge: %v\n", err)
		return 2
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "poolproof judge: no PATH: give a report folder (poolproof-report) or history files, e.g. poolproof judge poolproof-report")
		return 2
	}
	files, err := historyFiles(paths)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof judge: %v\n", err)
		return 2
	}
	cert, err := rejudgeFiles(files)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof judge: %v\n", err)
		return 2
	}
	meta := report.Meta{Client: *client}
	_ = report.WriteScorecard(stdout, cert, meta)
	if *rewrite != "" {
		meta.Generated = time.Now()
		written, err := report.Write(*rewrite, cert, meta)
		if err != nil {
			fmt.Fprintf(stderr, "poolproof judge: -rewrite: %v\n", err)
			return 1
		}
		printReportFiles(stdout, *rewrite, written)
	}
	if !cert.Passed() {
		return 1
	}
	return 0
}

// historyFiles expands report folders into their histories, in name
// order; a file is taken as it is.
func historyFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: give a report folder or a history file", p, errors.Unwrap(err))
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		dir := p
		if sub := filepath.Join(p, report.HistoriesDir); isDir(sub) {
			dir = sub
		}
		var found []string
		for _, pattern := range []string{"*.json", "*.json.gz"} {
			m, _ := filepath.Glob(filepath.Join(dir, pattern))
			found = append(found, m...)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no histories (*.json.gz or *.json) in it: give the folder certify -report wrote", p)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	return out, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// rejudgeFiles loads every history and judges it again, as one
// certificate in the order given.
func rejudgeFiles(files []string) (*harness.Certificate, error) {
	cert := &harness.Certificate{}
	for _, path := range files {
		h, err := loadHistoryFile(path)
		if err != nil {
			return nil, err
		}
		verdicts, err := harness.Rejudge(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		res := harness.ScenarioResult{Scenario: h.Scenario, Family: h.Family, Proves: h.Proves, Seed: h.Seed, Protocol: h.Protocol,
			History: h, Verdicts: verdicts, Elapsed: h.Elapsed}
		if cert.Environment == "" {
			cert.Environment = h.Environment
		}
		cert.Results = append(cert.Results, res)
		cert.Elapsed += h.Elapsed
	}
	return cert, nil
}

func loadHistoryFile(path string) (*harness.History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	h, err := harness.LoadHistory(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}
