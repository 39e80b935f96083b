package report

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// WriteScorecard prints the terminal scorecard: every verdict, scenario by
// check, with the measured value against its bound and the seed, then the
// certificate's one-line outcome. It shares its words and numbers with the
// HTML, JUnit and Markdown reports.
func WriteScorecard(w io.Writer, cert *harness.Certificate, meta Meta) error {
	if cert == nil {
		return ErrNoCertificate
	}
	fmt.Fprintf(w, "\nscorecard: %s client on the %s environment\n\n", clientName(meta), cert.Environment)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tCHECK\tRESULT\tMEASURED\tBOUND\tSEED\tREASON")
	var total counts
	for _, r := range cert.Results {
		for _, v := range r.Verdicts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Scenario, v.Check, statusLabel(v.Status),
				formatValue(v, v.Measured), formatValue(v, v.Bound), v.Seed, v.Reason)
		}
		total = total.add(countVerdicts(r.Verdicts))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	outcome := overall(cert)
	if cert.Interrupted {
		outcome += " (partial results)"
	}
	_, err := fmt.Fprintf(w, "\n%s: %d checks passed, %d failed, %d not applicable, in %d scenarios (%s)\n",
		outcome, total.Pass, total.Fail, total.NA, len(cert.Results), cert.Elapsed.Round(100*time.Millisecond))
	return err
}
