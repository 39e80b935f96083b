package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/svgchart"
)

// htmlPage is what the page template renders.
type htmlPage struct {
	Client      string
	Outcome     string
	OutcomeKind string // pass, fail or interrupted: the badge's colour
	Environment string
	Started     string
	Generated   string
	Elapsed     string
	Seed        int64
	Totals      counts
	Failures    []string
	Rows        []htmlVerdict
	Scenarios   []htmlScenario
	Matrix      htmlMatrix
}

// htmlMatrix is the at-a-glance grid: a row per scenario (failed ones
// first), a column per check, a coloured cell per verdict.
type htmlMatrix struct {
	Checks []string
	Rows   []htmlMatrixRow
}

type htmlMatrixRow struct {
	Scenario, Anchor, Kind string
	Cells                  []htmlMatrixCell
}

type htmlMatrixCell struct {
	Kind, Title string // Kind "" when the scenario does not run the check
	Anchor      string // the scenario's section
}

// newMatrix builds the grid from the certificate: checks in the order the
// scenarios first show them.
func newMatrix(cert *harness.Certificate) htmlMatrix {
	var m htmlMatrix
	col := map[string]int{}
	for _, r := range cert.Results {
		for _, v := range r.Verdicts {
			if _, ok := col[v.Check]; !ok {
				col[v.Check] = len(m.Checks)
				m.Checks = append(m.Checks, v.Check)
			}
		}
	}
	var failed, rest []htmlMatrixRow
	for _, r := range cert.Results {
		row := htmlMatrixRow{Scenario: r.Scenario, Anchor: anchor(r.Scenario), Cells: make([]htmlMatrixCell, len(m.Checks))}
		for _, v := range r.Verdicts {
			row.Cells[col[v.Check]] = htmlMatrixCell{Kind: kindOf(v.Status), Anchor: row.Anchor,
				Title: fmt.Sprintf("%s, %s: %s. %s", r.Scenario, v.Check, statusLabel(v.Status), v.Reason)}
		}
		if r.Passed() {
			row.Kind = "pass"
			rest = append(rest, row)
		} else {
			row.Kind = "fail"
			failed = append(failed, row)
		}
	}
	m.Rows = append(failed, rest...)
	return m
}

type htmlVerdict struct {
	Scenario, Anchor, Check, Status, Kind, Measured, Bound, Reason string
	Seed                                                           int64
}

type htmlScenario struct {
	Name, Anchor, Family, Proves, Outcome, Kind, Elapsed, Err string
	Seed                                                      int64
	Counts                                                    counts
	Verdicts                                                  []htmlVerdict
	Windows                                                   []htmlWindow
	Steps                                                     []htmlStep
	Charts                                                    []svgchart.Chart
	Calls                                                     int
	NoHistory                                                 bool
}

type htmlWindow struct {
	Name, Service, Span, Labels, Swatch string
}

type htmlStep struct {
	At, Ended, Label, Err string
}

// WriteHTML writes a self-contained HTML page: the scorecard (every verdict,
// failures first in a box of their own and highlighted in the table), then
// one section per scenario with its verdicts, its fault windows and a grid of
// timelines (throughput, error rate, p50/p99 latency, server-side open
// connections, client goroutines) with the fault windows shaded. The page has
// no script and references nothing outside itself.
func WriteHTML(w io.Writer, cert *harness.Certificate, meta Meta) error {
	if cert == nil {
		return ErrNoCertificate
	}
	page := htmlPage{
		Client:      clientName(meta),
		Outcome:     overall(cert),
		Environment: cert.Environment,
		Elapsed:     cert.Elapsed.Round(100 * time.Millisecond).String(),
		Seed:        cert.Seed,
	}
	switch page.Outcome {
	case "CERTIFIED":
		page.OutcomeKind = "pass"
	case "INTERRUPTED":
		page.OutcomeKind = "interrupted"
	default:
		page.OutcomeKind = "fail"
	}
	if !cert.Started.IsZero() {
		page.Started = cert.Started.UTC().Format("2006-01-02 15:04:05 MST")
	}
	if !meta.Generated.IsZero() {
		page.Generated = meta.Generated.UTC().Format("2006-01-02 15:04:05 MST")
	}
	for _, v := range cert.Failures() {
		page.Failures = append(page.Failures, v.String())
	}
	for _, r := range cert.Results {
		s, err := newHTMLScenario(r)
		if err != nil {
			return err
		}
		page.Totals = page.Totals.add(s.Counts)
		page.Rows = append(page.Rows, s.Verdicts...)
		page.Scenarios = append(page.Scenarios, s)
	}
	page.Matrix = newMatrix(cert)
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("rendering the HTML report: %w", err)
	}
	return nil
}

func newHTMLScenario(r harness.ScenarioResult) (htmlScenario, error) {
	s := htmlScenario{
		Name: r.Scenario, Anchor: anchor(r.Scenario), Family: r.Family, Proves: r.Proves,
		Outcome: scenarioOutcome(r), Seed: r.Seed, Err: r.Err,
		Elapsed: r.Elapsed.Round(100 * time.Millisecond).String(),
		Counts:  countVerdicts(r.Verdicts),
	}
	s.Kind = map[string]string{"passed": "pass", "failed": "fail", "interrupted": "interrupted"}[s.Outcome]
	for _, v := range r.Verdicts {
		s.Verdicts = append(s.Verdicts, htmlVerdict{
			Scenario: r.Scenario, Anchor: s.Anchor, Check: v.Check, Status: statusLabel(v.Status),
			Kind: kindOf(v.Status), Measured: formatValue(v, v.Measured), Bound: formatValue(v, v.Bound),
			Reason: v.Reason, Seed: v.Seed,
		})
	}
	if r.History == nil {
		s.NoHistory = true
		return s, nil
	}
	s.Calls = len(r.History.Calls)
	tl := NewTimeline(r.History)
	for i, win := range tl.Windows {
		c := faultColor(win.Service)
		span := fmt.Sprintf("%.2fs to %.2fs", win.Start.Seconds(), win.End.Seconds())
		if !win.Closed {
			span += " (to the end of the run)"
		}
		s.Windows = append(s.Windows, htmlWindow{
			Name: windowName(i), Service: win.Service, Span: span, Labels: strings.Join(win.Labels, "; "),
			// opaque version of the band's colour, so the swatch reads on white
			Swatch: fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B),
		})
	}
	for _, st := range tl.Steps {
		hs := htmlStep{At: fmt.Sprintf("%.2fs", st.Started.Seconds()), Label: st.Step.Label, Err: st.Err}
		if st.Ended > 0 {
			hs.Ended = fmt.Sprintf("%.2fs", st.Ended.Seconds())
		}
		if hs.Label == "" {
			hs.Label = fmt.Sprintf("step at %s", st.Step.At)
		}
		s.Steps = append(s.Steps, hs)
	}
	for _, spec := range tl.charts() {
		chart, err := renderChart(spec, tl.Windows, tl.End)
		if err != nil {
			return s, fmt.Errorf("scenario %s: %w", r.Scenario, err)
		}
		s.Charts = append(s.Charts, chart)
	}
	return s, nil
}

func kindOf(st harness.Status) string {
	switch st {
	case harness.StatusPass:
		return "pass"
	case harness.StatusFail:
		return "fail"
	default:
		return "na"
	}
}

// anchor is the fragment id of a scenario's section.
func anchor(scenario string) string {
	return "s-" + strings.TrimSuffix(HistoryFileName(scenario), historySuffix)
}

var pageTemplate = template.Must(template.New("report").Parse(pageHTML))

// pageCSS holds every style of the page. It must never load anything: no
// url(), no @import, system fonts only.
const pageCSS = `
:root { color-scheme: light; --fail: #b00020; --fail-bg: #fde7ea; --pass: #1b7f3b; --pass-bg: #e6f4ea; --na: #666; --na-bg: #f1f1f1; --int: #8a5a00; --int-bg: #fff4dc; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; color: #1d1d1f; margin: 0; background: #fafafa; }
main { max-width: 1360px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 0; display: inline; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.meta { color: #555; margin: 0 0 12px; }
.meta span { margin-right: 14px; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; vertical-align: middle; margin-left: 6px; }
.badge.pass { background: var(--pass-bg); color: var(--pass); }
.badge.fail { background: var(--fail-bg); color: var(--fail); }
.badge.na { background: var(--na-bg); color: var(--na); }
.badge.interrupted { background: var(--int-bg); color: var(--int); }
.badge.big { font-size: 16px; padding: 3px 12px; }
.failures { border: 2px solid var(--fail); background: var(--fail-bg); border-radius: 6px; padding: 8px 14px; margin: 12px 0; }
.failures h3 { color: var(--fail); margin-top: 4px; }
.failures ol { margin: 0; padding-left: 22px; }
.failures li { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12.5px; margin: 3px 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
th { background: #f0f0f3; font-weight: 600; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.scen { white-space: nowrap; }
td.check { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12px; white-space: nowrap; }
tr.fail td { background: var(--fail-bg); }
tr.fail td.status { color: var(--fail); font-weight: 700; }
tr.pass td.status { color: var(--pass); }
tr.na td { color: var(--na); }
a { color: #0b57d0; text-decoration: none; }
a:hover { text-decoration: underline; }
section.scenario { background: #fff; border: 1px solid #ddd; border-left: 6px solid #ccc; border-radius: 6px; padding: 12px 16px; margin: 22px 0; }
section.scenario.fail { border-left-color: var(--fail); }
section.scenario.pass { border-left-color: var(--pass); }
section.scenario.interrupted { border-left-color: var(--int); }
.proves { color: #444; margin: 4px 0 8px; font-style: italic; }
.err { color: var(--fail); font-weight: 600; }
.windows { margin: 6px 0; padding: 0; list-style: none; font-size: 13px; }
.windows li { margin: 2px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #999; vertical-align: -1px; margin-right: 4px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 10px; margin-top: 10px; }
figure { margin: 0; border: 1px solid #e6e6e6; border-radius: 4px; padding: 4px; background: #fff; }
figure svg { display: block; width: 100%; height: auto; }
figure svg text { font-family: "Liberation Sans", Arimo, Arial, Helvetica, sans-serif !important; }
details { margin-top: 8px; font-size: 13px; }
nav.toc { margin: 0 0 10px; font-size: 13px; line-height: 1.9; }
nav.toc a { display: inline-block; padding: 0 7px; border-radius: 9px; margin-right: 2px; }
nav.toc a.pass { background: var(--pass-bg); color: var(--pass); }
nav.toc a.fail { background: var(--fail-bg); color: var(--fail); font-weight: 700; }
nav.toc a.interrupted { background: var(--int-bg); color: var(--int); }
footer { color: #777; font-size: 12px; margin-top: 30px; }
table.matrix { width: auto; font-size: 12px; }
table.matrix th.check { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-weight: 400; padding: 6px 2px; vertical-align: bottom; }
table.matrix td { padding: 2px 8px; }
table.matrix td.cell { padding: 2px; text-align: center; }
table.matrix td.cell a { display: block; width: 18px; height: 18px; border-radius: 3px; }
table.matrix td.cell.pass a { background: var(--pass); opacity: 0.75; }
table.matrix td.cell.fail a { background: var(--fail); }
table.matrix td.cell.na a { background: var(--na-bg); border: 1px solid var(--na); box-sizing: border-box; }
table.matrix tr.scen-fail td.scen a { color: var(--fail); font-weight: 700; }
`

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>poolproof: {{.Client}} client {{.Outcome}}</title>
<style>` + pageCSS + `</style>
</head>
<body>
<main>
<h1>poolproof certification: {{.Client}} client <span class="badge big {{.OutcomeKind}}">{{.Outcome}}</span></h1>
<p class="meta"><span>environment: {{.Environment}}</span>{{if .Started}}<span>started: {{.Started}}</span>{{end}}<span>took: {{.Elapsed}}</span>{{if .Seed}}<span>seed for every scenario: {{.Seed}}</span>{{end}}<span>{{len .Scenarios}} scenarios</span><span>{{.Totals.Pass}} checks passed, {{.Totals.Fail}} failed, {{.Totals.NA}} not applicable</span></p>
<nav class="toc">scenarios:{{range .Scenarios}} <a class="{{.Kind}}" href="#{{.Anchor}}">{{.Name}}</a>{{end}}</nav>
{{if .Failures}}<div class="failures" id="failures">
<h3>{{len .Failures}} failed check{{if gt (len .Failures) 1}}s{{end}}</h3>
<ol>{{range .Failures}}
<li>{{.}}</li>{{end}}
</ol>
</div>{{end}}
<h3 id="matrix">At a glance</h3>
<p class="meta"><span>a row per scenario, failed ones first; a column per check; green passed, red failed, grey not applicable, blank not judged in that scenario; hover a cell for its verdict</span></p>
<table class="matrix">
<thead><tr><th>scenario</th>{{range .Matrix.Checks}}<th class="check">{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Matrix.Rows}}
<tr class="scen-{{.Kind}}"><td class="scen"><a href="#{{.Anchor}}">{{.Scenario}}</a></td>{{range .Cells}}<td class="cell {{.Kind}}">{{if .Kind}}<a href="#{{.Anchor}}" title="{{.Title}}"></a>{{end}}</td>{{end}}</tr>{{end}}
</tbody>
</table>
<h3 id="scorecard">Scorecard</h3>
<table>
<thead><tr><th>scenario</th><th>check</th><th>result</th><th>measured</th><th>bound</th><th>seed</th><th>reason</th></tr></thead>
<tbody>{{range .Rows}}
<tr class="{{.Kind}}"><td class="scen"><a href="#{{.Anchor}}">{{.Scenario}}</a></td><td class="check">{{.Check}}</td><td class="status">{{.Status}}</td><td class="num">{{.Measured}}</td><td class="num">{{.Bound}}</td><td class="num">{{.Seed}}</td><td>{{.Reason}}</td></tr>{{end}}
</tbody>
</table>
{{range $s := .Scenarios}}
<section class="scenario {{.Kind}}" id="{{.Anchor}}">
<h2>{{.Name}}</h2> <span class="badge {{.Kind}}">{{.Outcome}}</span>
<p class="meta"><span>family: {{.Family}}</span><span>seed: {{.Seed}}</span><span>took: {{.Elapsed}}</span><span>{{.Calls}} calls</span><span>{{.Counts.Pass}} passed, {{.Counts.Fail}} failed, {{.Counts.NA}} n/a</span></p>
{{if .Proves}}<p class="proves">{{.Proves}}</p>{{end}}
{{if .Err}}<p class="err">{{.Err}}</p>{{end}}
<table>
<thead><tr><th>check</th><th>result</th><th>measured</th><th>bound</th><th>reason</th></tr></thead>
<tbody>{{range .Verdicts}}
<tr class="{{.Kind}}"><td class="check">{{.Check}}</td><td class="status">{{.Status}}</td><td class="num">{{.Measured}}</td><td class="num">{{.Bound}}</td><td>{{.Reason}}</td></tr>{{end}}
</tbody>
</table>
{{if .NoHistory}}<p class="meta">No history was recorded: the run did not start, so there is no timeline.</p>{{else}}
{{if .Windows}}<h3>Fault windows (shaded in the charts)</h3>
<ul class="windows">{{range .Windows}}
<li><span class="swatch" style="background: {{.Swatch}}"></span><b>{{.Name}}</b> {{.Service}}, {{.Span}}: {{.Labels}}</li>{{end}}
</ul>{{else}}<p class="meta">No fault was injected in this scenario.</p>{{end}}
<div class="charts">{{range .Charts}}
<figure id="{{$s.Anchor}}-{{.ID}}">{{.SVG}}</figure>{{end}}
</div>
{{if .Steps}}<details><summary>Nemesis steps as executed ({{len .Steps}})</summary>
<table>
<thead><tr><th>started</th><th>ended</th><th>step</th><th>error</th></tr></thead>
<tbody>{{range .Steps}}
<tr><td class="num">{{.At}}</td><td class="num">{{.Ended}}</td><td>{{.Label}}</td><td class="err">{{.Err}}</td></tr>{{end}}
</tbody>
</table>
</details>{{end}}{{end}}
</section>{{end}}
<footer>Written by poolproof{{if .Generated}} on {{.Generated}}{{end}}. Every verdict names its seed: rerun the scenario with that seed to replay it, or judge the saved histories again: poolproof judge &lt;this folder&gt;.</footer>
</main>
</body>
</html>
`
