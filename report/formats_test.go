package report_test

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/report"
)

// handCert has what a real run rarely shows at once: a verdict that could not
// be judged, a reason with markup and a pipe in it, and a scenario that was
// interrupted before it was judged.
func handCert() *harness.Certificate {
	return &harness.Certificate{
		Environment: "embedded",
		Started:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Elapsed:     3 * time.Second,
		Interrupted: true,
		Results: []harness.ScenarioResult{
			{
				Scenario: "mixed", Family: "leak", Seed: 42, Elapsed: time.Second,
				Verdicts: []harness.Verdict{
					{Check: "leak.goroutines", Scenario: "mixed", Seed: 42, Measured: 0, Bound: 0, Unit: "goroutines", Status: harness.StatusPass, Reason: "none left"},
					{Check: "leak.fds", Scenario: "mixed", Seed: 42, Status: harness.StatusNotApplicable, Reason: "no fd counts on this OS"},
					{Check: "pool.bound", Scenario: "mixed", Seed: 42, Measured: 20, Bound: 16, Unit: "connections", Status: harness.StatusFail, Reason: `20 > 16 | <script>alert("x")</script>`},
				},
			},
			{Scenario: "cut-short", Family: "pool", Seed: 43, Interrupted: true, Err: "context canceled"},
		},
	}
}

// junitDoc is the part of the JUnit schema CI systems read.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, cert *harness.Certificate) junitDoc {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, report.WriteJUnit(&buf, cert, report.Meta{Client: "test"}))
	var doc junitDoc
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &doc), buf.String())
	return doc
}

func TestJUnitHasOneTestcasePerVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		cert func(t *testing.T) *harness.Certificate
	}{
		{"real certification", certificate},
		{"hand-built", func(*testing.T) *harness.Certificate { return handCert() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := tc.cert(t)
			doc := parseJUnit(t, cert)
			require.Len(t, doc.Suites, len(cert.Results))
			failures := 0
			for i, r := range cert.Results {
				s := doc.Suites[i]
				assert.Equal(t, r.Scenario, s.Name)
				if len(r.Verdicts) == 0 {
					require.Len(t, s.Cases, 1, "an unjudged scenario is one errored case")
					require.NotNil(t, s.Cases[0].Error)
					assert.Contains(t, s.Cases[0].Error.Message, "not judged")
					continue
				}
				require.Len(t, s.Cases, len(r.Verdicts))
				assert.Equal(t, len(r.Verdicts), s.Tests)
				for j, v := range r.Verdicts {
					c := s.Cases[j]
					assert.Equal(t, v.Check, c.Name)
					assert.Equal(t, "poolproof."+r.Scenario, c.Classname)
					switch v.Status {
					case harness.StatusFail:
						failures++
						require.NotNil(t, c.Failure, v.Check)
						assert.Equal(t, v.String(), c.Failure.Message)
						assert.Contains(t, c.Failure.Text, v.Reason)
						assert.Nil(t, c.Skipped)
					case harness.StatusPass:
						assert.Nil(t, c.Failure, v.Check)
						assert.Nil(t, c.Skipped, v.Check)
					default:
						assert.Nil(t, c.Failure, v.Check)
						require.NotNil(t, c.Skipped, v.Check)
						assert.Equal(t, v.Reason, c.Skipped.Message)
					}
				}
			}
			assert.Equal(t, len(cert.Failures()), failures)
			assert.Equal(t, failures, doc.Failures)
			assert.Equal(t, len(cert.NotApplicable()), doc.Skipped)
		})
	}
}

func TestSummaryHasTheTableAndTheFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cert      func(t *testing.T) *harness.Certificate
		headline  string
		rows      []string
		mustNotIn []string
	}{
		{"real certification", certificate, "## poolproof: test client NOT CERTIFIED",
			[]string{"| blackhole | timeout | passed | 6 | 0 | 0 | 7 |", "| process-then-fail | retry | **FAILED** | 5 | 1 | 0 | 7 |"}, nil},
		{"hand-built", func(*testing.T) *harness.Certificate { return handCert() }, "## poolproof: test client INTERRUPTED",
			[]string{"| mixed | leak | **FAILED** | 1 | 1 | 1 | 42 |", "| cut-short | pool | **INTERRUPTED** | 0 | 0 | 0 | 43 |"},
			[]string{"| mixed | leak | passed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := tc.cert(t)
			var buf bytes.Buffer
			require.NoError(t, report.WriteSummary(&buf, cert, report.Meta{Client: "test"}))
			md := buf.String()
			assert.Contains(t, md, tc.headline)
			assert.Contains(t, md, "| scenario | family | result | passed | failed | n/a | seed | time |")
			for _, row := range tc.rows {
				assert.Contains(t, md, row)
			}
			for _, v := range cert.Failures() {
				assert.Contains(t, md, "- `"+v.String()+"`")
			}
			for _, s := range tc.mustNotIn {
				assert.NotContains(t, md, s)
			}
			// every table row has the header's column count (a stray pipe would add one)
			for _, line := range strings.Split(md, "\n") {
				if strings.HasPrefix(line, "| ") {
					assert.Equal(t, 9, strings.Count(line, "|")-strings.Count(line, `\|`), line)
				}
			}
		})
	}
}

// loadingTags are the elements that make a browser load or run something.
var loadingTags = map[string]bool{"script": true, "link": true, "iframe": true, "img": true, "object": true, "embed": true, "image": true, "use": true, "source": true, "video": true, "audio": true}

// cssFetch matches what makes a stylesheet load something.
var cssFetch = regexp.MustCompile(`(?i)@import|url\(`)

// loads lists what in the parsed page would make a browser fetch anything:
// loading elements, src attributes, links that leave the page, and
// stylesheet imports or urls. A URL in the text (an error message that
// names the request it failed) is data, not a fetch.
func loads(doc *html.Node) []string {
	var out []string
	for n := range doc.Descendants() {
		switch n.Type {
		case html.ElementNode:
			if loadingTags[n.Data] {
				out = append(out, "<"+n.Data+">")
			}
			for _, a := range n.Attr {
				switch {
				case a.Key == "src", a.Key == "srcset", a.Key == "background":
					out = append(out, n.Data+" "+a.Key+"="+a.Val)
				case strings.HasSuffix(a.Key, "href") && !strings.HasPrefix(a.Val, "#"):
					out = append(out, n.Data+" "+a.Key+"="+a.Val)
				case a.Key == "style" && cssFetch.MatchString(a.Val):
					out = append(out, n.Data+" style="+a.Val)
				}
			}
		case html.TextNode:
			if n.Parent != nil && n.Parent.Data == "style" && cssFetch.MatchString(n.Data) {
				out = append(out, "<style> "+cssFetch.FindString(n.Data))
			}
		}
	}
	return out
}

func TestHTMLIsSelfContained(t *testing.T) {
	cert := certificate(t)
	var buf bytes.Buffer
	require.NoError(t, report.WriteHTML(&buf, cert, report.Meta{Client: "retries-unsafe-post"}))
	page := buf.String()
	doc, err := html.Parse(strings.NewReader(page))
	require.NoError(t, err)
	assert.Empty(t, loads(doc), "the page must load nothing")
	svgs, failRows := 0, 0
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "svg" {
			svgs++
		}
		if n.Data == "tr" && attr(n, "class") == "fail" {
			failRows++
		}
	}
	charts := 0
	for _, r := range cert.Results {
		if r.History != nil {
			charts += 5
		}
	}
	assert.Equal(t, charts, svgs, "one <svg> per chart, five per scenario")
	assert.Equal(t, 2*len(cert.Failures()), failRows, "each failure is highlighted in the scorecard and in its scenario")
	assert.Contains(t, page, `class="failures"`)
	assert.Contains(t, page, "F1</b> inventory", "blackhole's fault window is listed")
	for _, v := range cert.Failures() {
		assert.Contains(t, page, html.EscapeString(v.String()))
	}
}

func TestHTMLEscapesWhatItShows(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, report.WriteHTML(&buf, handCert(), report.Meta{Client: `<b>me</b>`}))
	page := buf.String()
	assert.NotContains(t, page, "<script>")
	assert.Contains(t, page, "&lt;script&gt;")
	assert.NotContains(t, page, "<b>me</b>")
	assert.Contains(t, page, "INTERRUPTED")
	assert.Contains(t, page, "No history was recorded")
	assert.NotContains(t, page, "<svg", "no history, no chart")
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// loads must see every way a page can fetch, and let URLs in text be.
func TestLoadsFindsWhatFetches(t *testing.T) {
	for _, tc := range []struct {
		page  string
		found bool
	}{
		{`<p>Post "https://127.0.0.1:1/v1/charges": EOF</p>`, false},
		{`<a href="#s-baseline">baseline</a>`, false},
		{`<script>1</script>`, true},
		{`<link rel="stylesheet" href="x.css">`, true},
		{`<img src="data:x">`, true},
		{`<a href="https://example.invalid/">x</a>`, true},
		{`<style>body{background:url(x.png)}</style>`, true},
		{`<style>@import "x.css";</style>`, true},
		{`<div style="background:url(x)"></div>`, true},
		{`<svg><image href="x.png"/></svg>`, true},
	} {
		doc, err := html.Parse(strings.NewReader(tc.page))
		require.NoError(t, err)
		assert.Equal(t, tc.found, len(loads(doc)) > 0, tc.page)
	}
}

// The page opens with a grid, scenarios by checks: failed scenarios first,
// a coloured cell per verdict, blank where a scenario did not judge a check.
func TestHTMLMatrixPutsFailuresFirst(t *testing.T) {
	cert := &harness.Certificate{Environment: "embedded", Results: []harness.ScenarioResult{
		{Scenario: "calm", Verdicts: []harness.Verdict{{Check: "pool.bound", Status: harness.StatusPass}}},
		{Scenario: "storm", Verdicts: []harness.Verdict{{Check: "pool.bound", Status: harness.StatusPass}, {Check: "retry.backoff", Status: harness.StatusFail, Reason: "no gap"}}},
	}}
	var buf bytes.Buffer
	require.NoError(t, report.WriteHTML(&buf, cert, report.Meta{Client: "test"}))
	page := buf.String()
	i := strings.Index(page, `<table class="matrix">`)
	require.Positive(t, i)
	matrix := page[i : i+strings.Index(page[i:], "</table>")]
	assert.Less(t, strings.Index(matrix, ">storm<"), strings.Index(matrix, ">calm<"), "the failed scenario first")
	assert.Contains(t, matrix, `<th class="check">pool.bound</th><th class="check">retry.backoff</th>`)
	assert.Contains(t, matrix, `<td class="cell fail"><a href="#s-storm" title="storm, retry.backoff: FAIL. no gap"></a></td>`)
	assert.Regexp(t, `>calm</a></td><td class="cell pass"><a [^>]*></a></td><td class="cell "></td></tr>`, matrix, "calm did not judge retry.backoff: a blank cell")
	assert.Less(t, i, strings.Index(page, `id="scorecard"`), "before the full table")
}
