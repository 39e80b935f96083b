package comparison

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

// Column is one client's certificate in the table. Err says why the
// client could not be certified at all (its column then reads "error").
type Column struct {
	Entry Entry
	Cert  *harness.Certificate
	Err   string
}

// Cell is one check's outcome for one client over every scenario: failed
// when any scenario failed it, passed when one passed and none failed, not
// applicable when no scenario could judge it, absent when none ran it.
type Cell struct {
	Status    harness.Status // "" when no scenario ran the check
	Failed    []string       // the scenarios that failed it, in run order
	Reason    string         // the first failure's reason
	Scenarios int            // the scenarios that judged it (passed or failed)
}

// CellOf folds one check's verdicts over a certificate's scenarios.
func CellOf(cert *harness.Certificate, id string) Cell {
	var c Cell
	if cert == nil {
		return c
	}
	for _, r := range cert.Results {
		for _, v := range r.Verdicts {
			if v.Check != id {
				continue
			}
			switch v.Status {
			case harness.StatusFail:
				c.Status = harness.StatusFail
				c.Failed = append(c.Failed, r.Scenario)
				c.Scenarios++
				if c.Reason == "" {
					c.Reason = v.Reason
				}
			case harness.StatusPass:
				c.Scenarios++
				if c.Status != harness.StatusFail {
					c.Status = harness.StatusPass
				}
			case harness.StatusNotApplicable:
				if c.Status == "" {
					c.Status = harness.StatusNotApplicable
				}
			}
		}
	}
	return c
}

// Checks lists the check ids any column's certificate holds a verdict
// for: the catalog's checks in report order (check.AllIDs), then any
// other (a proxy's, a team's own) by name.
func Checks(cols []Column) []string {
	seen := map[string]bool{}
	for _, col := range cols {
		if col.Cert == nil {
			continue
		}
		for _, r := range col.Cert.Results {
			for _, v := range r.Verdicts {
				seen[v.Check] = true
			}
		}
	}
	var out []string
	for _, id := range check.AllIDs() {
		if seen[id] {
			out = append(out, id)
			delete(seen, id)
		}
	}
	var rest []string
	for id := range seen {
		rest = append(rest, id)
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Write prints the comparison as Markdown: a line saying what was run, the
// table (a row per check, a column per client), then per client the
// checks it failed and why: the manifest's sentence for that check, else
// the first failing verdict's reason, with the scenarios that failed it.
func Write(w io.Writer, about string, cols []Column) error {
	var b strings.Builder
	if about != "" {
		fmt.Fprintf(&b, "%s\n\n", about)
	}
	b.WriteString("| check |")
	for _, col := range cols {
		fmt.Fprintf(&b, " %s |", escape(col.Entry.Name))
	}
	b.WriteString("\n| --- |")
	for range cols {
		b.WriteString(" :---: |")
	}
	b.WriteString("\n")
	ids := Checks(cols)
	for _, id := range ids {
		fmt.Fprintf(&b, "| `%s` |", id)
		for _, col := range cols {
			fmt.Fprintf(&b, " %s |", cellText(col, CellOf(col.Cert, id)))
		}
		b.WriteString("\n")
	}
	for _, col := range cols {
		var lines []string
		if col.Err != "" {
			lines = append(lines, fmt.Sprintf("- not certified: %s", col.Err))
		}
		for _, id := range ids {
			c := CellOf(col.Cert, id)
			if c.Status != harness.StatusFail {
				continue
			}
			why := col.Entry.Why[id]
			if why == "" {
				why = c.Reason
			}
			lines = append(lines, fmt.Sprintf("- `%s` (%s): %s", id, strings.Join(c.Failed, ", "), why))
		}
		if len(lines) == 0 {
			continue
		}
		title := col.Entry.Name
		if col.Entry.Library != "" {
			title += " (" + col.Entry.Library + ")"
		}
		fmt.Fprintf(&b, "\n**%s** fails:\n\n%s\n", escape(title), strings.Join(lines, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cellText is one cell: pass, FAIL with the count of scenarios that failed
// it, n/a, or a dash when the check did not run for that client.
func cellText(col Column, c Cell) string {
	switch {
	case col.Cert == nil:
		return "error"
	case c.Status == harness.StatusFail:
		return fmt.Sprintf("**FAIL** (%d)", len(c.Failed))
	case c.Status == harness.StatusPass:
		return "pass"
	case c.Status == harness.StatusNotApplicable:
		return "n/a"
	}
	return "–"
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Splice returns doc with the text between the begin and end marker lines
// replaced by table; ok is false when doc lacks either marker, so that a
// file without them is written whole instead.
func Splice(doc, table string) (string, bool) {
	i := strings.Index(doc, BeginMarker)
	j := strings.Index(doc, EndMarker)
	if i < 0 || j < i {
		return "", false
	}
	start := i + len(BeginMarker)
	return doc[:start] + "\n" + strings.TrimRight(table, "\n") + "\n" + doc[j:], true
}

// The markers between which Splice puts the table in a longer document
// (README.md).
const (
	BeginMarker = "<!-- poolproof compare: begin -->"
	EndMarker   = "<!-- poolproof compare: end -->"
)
