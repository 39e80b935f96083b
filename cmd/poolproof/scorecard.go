package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/poolproof/poolproof/harness"
)

// writeScorecard prints every verdict, scenario by check, with the measured
// value against its bound and the seed, then a one-line summary.
func writeScorecard(w io.Writer, client string, cert *harness.Certificate) {
	fmt.Fprintf(w, "\nscorecard: %s client on the %s environment\n\n", client, cert.Environment)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tCHECK\tRESULT\tMEASURED\tBOUND\tSEED\tREASON")
	pass, fail, na := 0, 0, 0
	for _, r := range cert.Results {
		for _, v := range r.Verdicts {
			measured, bound := "-", "-"
			if v.Status != harness.StatusNotApplicable {
				measured, bound = withUnit(v.Measured, v.Unit), withUnit(v.Bound, v.Unit)
			}
			switch v.Status {
			case harness.StatusPass:
				pass++
			case harness.StatusFail:
				fail++
			default:
				na++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Scenario, v.Check, label(v.Status), measured, bound, v.Seed, v.Reason)
		}
	}
	_ = tw.Flush()
	verdict := "CERTIFIED"
	if !cert.Passed() {
		verdict = "NOT CERTIFIED"
	}
	if cert.Interrupted {
		verdict = "INTERRUPTED (partial results)"
	}
	fmt.Fprintf(w, "\n%s: %d checks passed, %d failed, %d not applicable, in %d scenarios (%s)\n",
		verdict, pass, fail, na, len(cert.Results), round(cert.Elapsed))
}

func label(s harness.Status) string {
	switch s {
	case harness.StatusPass:
		return "pass"
	case harness.StatusFail:
		return "FAIL"
	default:
		return "n/a"
	}
}

func withUnit(f float64, unit string) string {
	s := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
	if unit == "" {
		return s
	}
	return s + " " + unit
}
