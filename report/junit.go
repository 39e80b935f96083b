package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// The JUnit schema that CI systems read (Jenkins, GitLab, GitHub Actions
// reporters): testsuites > testsuite > testcase with failure, error or
// skipped. A scenario is a suite, a check a test case.
type junitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Skipped  int              `xml:"skipped,attr"`
	Time     string           `xml:"time,attr"`
	Suites   []junitTestSuite `xml:"testsuite"`
}

type junitTestSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitTestCase `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitTestCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// WriteJUnit writes the certificate as JUnit XML: one testsuite per scenario,
// one testcase per verdict. A failed verdict is a failure whose message is
// the verdict's String(); a verdict that could not be judged is skipped; a
// scenario cut short before it was judged has one errored testcase.
func WriteJUnit(w io.Writer, cert *harness.Certificate, meta Meta) error {
	if cert == nil {
		return ErrNoCertificate
	}
	doc := junitTestSuites{
		Name: fmt.Sprintf("poolproof certify: %s client on the %s environment", clientName(meta), cert.Environment),
		Time: seconds(cert.Elapsed),
	}
	for _, r := range cert.Results {
		s := junitTestSuite{
			Name: r.Scenario,
			Time: seconds(r.Elapsed),
			Properties: []junitProperty{
				{"family", r.Family},
				{"seed", strconv.FormatInt(r.Seed, 10)},
				{"client", clientName(meta)},
				{"environment", cert.Environment},
			},
			SystemOut: r.Proves,
		}
		if !cert.Started.IsZero() {
			s.Timestamp = cert.Started.UTC().Format("2006-01-02T15:04:05")
		}
		classname := "poolproof." + r.Scenario
		for _, v := range r.Verdicts {
			tc := junitTestCase{Name: v.Check, Classname: classname, Time: "0"}
			switch v.Status {
			case harness.StatusPass:
			case harness.StatusFail:
				tc.Failure = &junitProblem{Message: v.String(), Type: string(v.Status), Text: verdictDetail(v)}
				s.Failures++
			default:
				tc.Skipped = &junitSkipped{Message: v.Reason}
				s.Skipped++
			}
			s.Cases = append(s.Cases, tc)
		}
		if len(r.Verdicts) == 0 {
			msg := "the scenario was not judged"
			switch {
			case r.Err != "":
				msg += ": " + r.Err
			case r.Interrupted:
				msg += ": the run was interrupted"
			}
			s.Cases = append(s.Cases, junitTestCase{Name: harness.CheckRun, Classname: classname, Time: "0",
				Error: &junitProblem{Message: msg, Type: "not_judged", Text: msg}})
			s.Errors++
		}
		s.Tests = len(s.Cases)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encoding JUnit XML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encoding JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// verdictDetail is the failure's body: the one-line verdict, then its parts
// one per line, which CI systems show when the failure is opened.
func verdictDetail(v harness.Verdict) string {
	return fmt.Sprintf("%s\n\ncheck:    %s\nscenario: %s\nseed:     %d\nmeasured: %s\nbound:    %s\nreason:   %s\n",
		v.String(), v.Check, v.Scenario, v.Seed, formatValue(v, v.Measured), formatValue(v, v.Bound), v.Reason)
}
