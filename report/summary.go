package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// WriteSummary writes a Markdown summary for a pull-request comment or a CI
// log: the overall verdict, a table of scenarios with their pass, fail and
// n/a counts, and every failed verdict on its own line.
func WriteSummary(w io.Writer, cert *harness.Certificate, meta Meta) error {
	if cert == nil {
		return ErrNoCertificate
	}
	var b strings.Builder
	total := counts{}
	for _, r := range cert.Results {
		total = total.add(countVerdicts(r.Verdicts))
	}
	fmt.Fprintf(&b, "## poolproof: %s client %s\n\n", mdEscape(clientName(meta)), overall(cert))
	fmt.Fprintf(&b, "%d checks passed, %d failed, %d not applicable, in %d scenarios on the %s environment (%s).",
		total.Pass, total.Fail, total.NA, len(cert.Results), mdEscape(cert.Environment), cert.Elapsed.Round(100*time.Millisecond))
	if cert.Seed != 0 {
		fmt.Fprintf(&b, " Seed %d for every scenario.", cert.Seed)
	}
	if cert.Interrupted {
		b.WriteString(" The run was interrupted: these are partial results.")
	}
	b.WriteString("\n\n| scenario | family | result | passed | failed | n/a | seed | time |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range cert.Results {
		c := countVerdicts(r.Verdicts)
		result := scenarioOutcome(r)
		if result != "passed" {
			result = "**" + strings.ToUpper(result) + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %s |\n",
			mdEscape(r.Scenario), mdEscape(r.Family), result, c.Pass, c.Fail, c.NA, r.Seed, r.Elapsed.Round(100*time.Millisecond))
	}
	failures := cert.Failures()
	if len(failures) > 0 {
		fmt.Fprintf(&b, "\n### Failed checks (%d)\n\n", len(failures))
		for _, v := range failures {
			fmt.Fprintf(&b, "- `%s`\n", strings.ReplaceAll(v.String(), "`", "'"))
		}
	}
	for _, r := range cert.Results {
		if r.Err != "" {
			fmt.Fprintf(&b, "\n%s could not run to the end: %s\n", mdEscape(r.Scenario), mdEscape(r.Err))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape keeps a value inside its table cell: a pipe would end the cell and
// a newline the row.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
