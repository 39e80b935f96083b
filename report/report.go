package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// ErrNoCertificate is returned when there is nothing to report.
var ErrNoCertificate = errors.New("report: no certificate")

// Meta is what the certificate does not know about its own run.
type Meta struct {
	// Client names the client that was certified, e.g. "reference".
	Client string
	// Generated is when the report was written; zero leaves it out, which
	// keeps the output byte-for-byte reproducible.
	Generated time.Time
}

// File names inside a report folder.
const (
	HTMLFile      = "report.html"
	JUnitFile     = "junit.xml"
	SummaryFile   = "summary.md"
	HistoriesDir  = "histories"
	historySuffix = ".json.gz"
)

// Files are the paths Write wrote.
type Files struct {
	HTML      string
	JUnit     string
	Summary   string
	Histories []string // one per scenario that has a history
}

// Write writes the HTML report, the JUnit XML, the Markdown summary and every
// scenario's history into dir, creating it when needed. Files already there
// with the same names are replaced.
func Write(dir string, cert *harness.Certificate, meta Meta) (Files, error) {
	if cert == nil {
		return Files{}, ErrNoCertificate
	}
	if err := os.MkdirAll(filepath.Join(dir, HistoriesDir), 0o755); err != nil {
		return Files{}, fmt.Errorf("report folder %s: %w: choose a folder you can write to", dir, err)
	}
	files := Files{
		HTML:    filepath.Join(dir, HTMLFile),
		JUnit:   filepath.Join(dir, JUnitFile),
		Summary: filepath.Join(dir, SummaryFile),
	}
	for _, out := range []struct {
		path  string
		write func(*os.File) error
	}{
		{files.HTML, func(f *os.File) error { return WriteHTML(f, cert, meta) }},
		{files.JUnit, func(f *os.File) error { return WriteJUnit(f, cert, meta) }},
		{files.Summary, func(f *os.File) error { return WriteSummary(f, cert, meta) }},
	} {
		if err := writeFile(out.path, out.write); err != nil {
			return files, err
		}
	}
	for _, r := range cert.Results {
		if r.History == nil {
			continue
		}
		path := filepath.Join(dir, HistoriesDir, HistoryFileName(r.Scenario))
		if err := writeFile(path, func(f *os.File) error { return r.History.SaveCompressed(f) }); err != nil {
			return files, fmt.Errorf("history of %s: %w", r.Scenario, err)
		}
		files.Histories = append(files.Histories, path)
	}
	return files, nil
}

// HistoryFileName is the file name a scenario's history is saved under:
// the scenario name, with anything but letters, digits, '.', '_' and '-'
// replaced so that no name can leave the folder.
func HistoryFileName(scenario string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return '_'
	}, scenario)
	safe = strings.TrimLeft(safe, ".")
	if safe == "" {
		safe = "scenario"
	}
	return safe + historySuffix
}

func writeFile(path string, write func(*os.File) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// counts tallies verdicts by status.
type counts struct{ Pass, Fail, NA int }

func countVerdicts(vs []harness.Verdict) counts {
	var c counts
	for _, v := range vs {
		switch v.Status {
		case harness.StatusPass:
			c.Pass++
		case harness.StatusFail:
			c.Fail++
		default:
			c.NA++
		}
	}
	return c
}

func (c counts) add(o counts) counts { return counts{c.Pass + o.Pass, c.Fail + o.Fail, c.NA + o.NA} }

// overall is the certificate's one-word outcome, as the terminal scorecard
// prints it.
func overall(cert *harness.Certificate) string {
	switch {
	case cert.Interrupted:
		return "INTERRUPTED"
	case cert.Passed():
		return "CERTIFIED"
	default:
		return "NOT CERTIFIED"
	}
}

// scenarioOutcome is one scenario's one-word outcome.
func scenarioOutcome(r harness.ScenarioResult) string {
	switch {
	case r.Interrupted:
		return "interrupted"
	case r.Passed():
		return "passed"
	default:
		return "failed"
	}
}

func statusLabel(s harness.Status) string {
	switch s {
	case harness.StatusPass:
		return "pass"
	case harness.StatusFail:
		return "FAIL"
	default:
		return "n/a"
	}
}

// formatValue prints a measured value or bound with its unit; n/a verdicts
// have neither.
func formatValue(v harness.Verdict, f float64) string {
	if v.Status == harness.StatusNotApplicable {
		return "-"
	}
	s := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
	if v.Unit == "" {
		return s
	}
	return s + " " + v.Unit
}

func clientName(meta Meta) string {
	if meta.Client == "" {
		return "unnamed"
	}
	return meta.Client
}
