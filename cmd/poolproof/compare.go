package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/poolproof/poolproof/comparison"
	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
)

func init() {
	register(command{
		name:    "compare",
		summary: "certify several clients (built-in ones and drivers) and print one table, checks by client, with why each failure happens",
		run:     runCompare,
	})
}

// defaultManifest lists the clients README.md's comparison shows.
const defaultManifest = "drivers/comparison.json"

type compareFlags struct {
	manifest  string
	only      string
	profile   string
	scenarios string
	seed      int64
	out       string
}

// comparedClient is one manifest entry made ready to run: its factory for
// a built-in client or its command line for a driver, and its contract.
type comparedClient struct {
	entry   comparison.Entry
	factory harness.ClientFactory
	driver  []string
	profile harness.Profile
}

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f compareFlags
	fs := flag.NewFlagSet("poolproof compare", flag.ContinueOnError)
	fs.StringVar(&f.manifest, "manifest", defaultManifest, "the clients to compare, a JSON file: {\"clients\": [{\"name\", \"client\" (reference, plain, retrying, a gallery client) or \"driver\" (its command), \"contract\", \"library\", \"why\": {check id: sentence}}]}")
	fs.StringVar(&f.only, "only", "", "comma-separated names of the manifest's clients to run (default: all)")
	fs.StringVar(&f.profile, "profile", "standard", "scenario profile: quick, standard or soak")
	fs.StringVar(&f.scenarios, "scenario", "", "comma-separated scenario names or families to run (default: all of the profile)")
	fs.Int64Var(&f.seed, "seed", 0, "seed for every scenario (0: each scenario's own)")
	fs.StringVar(&f.out, "o", "-", "where to write the table: - for stdout, or a file; a file holding the lines "+comparison.BeginMarker+" and "+comparison.EndMarker+" (README.md) keeps the rest and has the table put between them")
	flags, dirs := splitPaths(fs, args)
	if err := parseFlags(fs, flags, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "\nWith report folders as arguments (poolproof compare DIR...), compare judges their histories again and runs nothing: a column per folder.")
			return 0
		}
		fmt.Fprintf(stderr, "poolproof compare: %v\n", err)
		return 2
	}
	if len(dirs) > 0 {
		return compareReports(dirs, f.out, stdout, stderr)
	}
	clients, catalog, err := prepareCompare(f)
	if err != nil {
		fmt.Fprintf(stderr, "poolproof compare: %v\n", err)
		return 2
	}
	if f.out != "-" { // fail now, not after a run of minutes
		if err := checkWritable(f.out); err != nil {
			fmt.Fprintf(stderr, "poolproof compare: -o %s: %v: choose a file you can write\n", f.out, err)
			return 2
		}
	}

	start := time.Now()
	cols := make([]comparison.Column, 0, len(clients))
	code := 0
	for i, c := range clients {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "poolproof compare: interrupted: %d of %d clients certified\n", i, len(clients))
			return 1
		}
		fmt.Fprintf(stderr, "poolproof: [client %d/%d] %s\n", i+1, len(clients), c.entry.Name)
		col := certifyCompared(ctx, c, catalog, f.seed, stderr)
		if col.Err != "" {
			fmt.Fprintf(stderr, "poolproof compare: %s: %s\n", c.entry.Name, col.Err)
			code = 1
		}
		cols = append(cols, col)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "poolproof compare: interrupted: the table is not written")
		return 1
	}
	about := fmt.Sprintf("The %s catalog (%d scenarios) on the embedded environment; a cell counts the scenarios that failed the check. Made by `poolproof compare -profile %s` in %s.",
		f.profile, len(catalog), f.profile, time.Since(start).Round(time.Second))
	var table strings.Builder
	_ = comparison.Write(&table, about, cols)
	if err := writeCompared(f.out, table.String(), stdout); err != nil {
		fmt.Fprintf(stderr, "poolproof compare: -o %s: %v\n", f.out, err)
		return 1
	}
	return code
}

// prepareCompare reads the manifest and makes every client ready to run,
// failing on the first that cannot be (a name poolproof does not know, a
// driver command not found, a bad contract) before anything runs.
func prepareCompare(f compareFlags) ([]comparedClient, []harness.Scenario, error) {
	m, err := comparison.Load(f.manifest)
	if err != nil {
		return nil, nil, fmt.Errorf("-manifest: %w", err)
	}
	if f.only != "" {
		if m, err = m.Only(strings.Split(f.only, ",")); err != nil {
			return nil, nil, fmt.Errorf("-only: %w", err)
		}
	}
	catalog, err := selectScenarios(f.profile, f.scenarios)
	if err != nil {
		return nil, nil, err
	}
	out := make([]comparedClient, 0, len(m.Clients))
	for _, e := range m.Clients {
		c := comparedClient{entry: e, profile: harness.DefaultProfile()}
		if e.Client != "" {
			if c.factory, c.profile, err = selectClient(e.Client); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", e.Name, err)
			}
		} else {
			if c.driver, err = splitCommand(e.Driver); err != nil {
				return nil, nil, fmt.Errorf("%s: driver %q: %w", e.Name, e.Driver, err)
			}
			if _, err := exec.LookPath(c.driver[0]); err != nil {
				return nil, nil, fmt.Errorf("%s: driver %q: %s: %w: install it or fix the manifest", e.Name, e.Driver, c.driver[0], errors.Unwrap(err))
			}
		}
		if e.Contract != "" {
			if c.profile, err = harness.LoadProfile(e.Contract); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", e.Name, err)
			}
		}
		out = append(out, c)
	}
	return out, catalog, nil
}

// certifyCompared certifies one client on a fresh embedded environment,
// with the same progress lines as certify.
func certifyCompared(ctx context.Context, c comparedClient, catalog []harness.Scenario, seed int64, stderr io.Writer) comparison.Column {
	col := comparison.Column{Entry: c.entry}
	e, err := env.Open(ctx, env.NameEmbedded)
	if err != nil {
		col.Err = "the embedded environment did not start: " + oneLine(err)
		return col
	}
	defer e.Close()
	factory := c.factory
	if c.driver != nil {
		drv := driver.NewFactory(ctx, c.driver, e.Services(), c.profile)
		defer drv.Close()
		factory = drv.Client
	}
	opts := []harness.CertifyOption{harness.WithCertifyProgress(newProgressPrinter(stderr).update)}
	if seed != 0 {
		opts = append(opts, harness.WithSeed(seed))
	}
	cert, err := harness.Certify(ctx, e, factory, c.profile, catalog, opts...)
	col.Cert = cert
	if err != nil {
		col.Err = oneLine(err)
	}
	return col
}

// checkWritable fails when path cannot be written, leaving the file as it
// was (a file created to try is removed).
func checkWritable(path string) error {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = f.Close()
	if errors.Is(statErr, os.ErrNotExist) {
		_ = os.Remove(path)
	}
	return err
}

// writeCompared writes the table to stdout ("-"), between the markers of
// a file that has them, or as the whole file.
func writeCompared(path, table string, stdout io.Writer) error {
	if path == "-" {
		_, err := io.WriteString(stdout, table)
		return err
	}
	doc, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return os.WriteFile(path, []byte(table), 0o644)
	}
	if err != nil {
		return err
	}
	if spliced, ok := comparison.Splice(string(doc), table); ok {
		return os.WriteFile(path, []byte(spliced), 0o644)
	}
	return os.WriteFile(path, []byte(table), 0o644)
}

// compareReports builds the table from report folders certify (or the
// suites, or an earlier compare) wrote: each folder's histories judged
// again (as poolproof judge does), a column named after the folder.
func compareReports(dirs []string, out string, stdout, stderr io.Writer) int {
	cols := make([]comparison.Column, 0, len(dirs))
	for _, dir := range dirs {
		if !isDir(dir) {
			fmt.Fprintf(stderr, "poolproof compare: %s: not a folder: give report folders (certify -report DIR)\n", dir)
			return 2
		}
		files, err := historyFiles([]string{dir})
		if err != nil {
			fmt.Fprintf(stderr, "poolproof compare: %v\n", err)
			return 2
		}
		cert, err := rejudgeFiles(files)
		if err != nil {
			fmt.Fprintf(stderr, "poolproof compare: %v\n", err)
			return 2
		}
		cols = append(cols, comparison.Column{Entry: comparison.Entry{Name: filepath.Base(filepath.Clean(dir))}, Cert: cert})
	}
	if out != "-" {
		if err := checkWritable(out); err != nil {
			fmt.Fprintf(stderr, "poolproof compare: -o %s: %v: choose a file you can write\n", out, err)
			return 2
		}
	}
	var table strings.Builder
	_ = comparison.Write(&table, fmt.Sprintf("%d report folders, their histories judged again; a cell counts the scenarios that failed the check.", len(dirs)), cols)
	if err := writeCompared(out, table.String(), stdout); err != nil {
		fmt.Fprintf(stderr, "poolproof compare: -o %s: %v\n", out, err)
		return 1
	}
	return 0
}
