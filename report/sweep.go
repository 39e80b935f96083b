package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/poolproof/poolproof/sweep"
)

// File names WriteSweep writes.
const (
	SweepHTMLFile = "sweep.html"
	SweepJSONFile = "sweep.json"
)

// Sweep chart size in points.
const (
	sweepChartWidth  = 5.5 * vg.Inch
	sweepChartHeight = 3 * vg.Inch
)

// sweepLineColors are the load levels' lines (Okabe-Ito, colour-blind friendly).
var sweepLineColors = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{0, 158, 115, 255},   // green
	color.RGBA{204, 121, 167, 255}, // purple
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{86, 180, 233, 255},  // sky blue
}

// gonum writes an XML prolog and namespace declarations; inline SVG in HTML
// needs neither, and dropping them leaves the page without a single URL.
var (
	sweepSVGProlog     = regexp.MustCompile(`(?s)\A.*?(<svg\b)`)
	sweepSVGNamespaces = regexp.MustCompile(`\s+xmlns(:xlink)?="[^"]*"`)
)

// SweepFiles are the paths WriteSweep wrote.
type SweepFiles struct {
	HTML string
	JSON string
}

// WriteSweep writes sweep.html (the table and the charts, self-contained)
// and sweep.json (the data) into dir, creating it if needed.
func WriteSweep(dir string, r *sweep.Result) (SweepFiles, error) {
	if r == nil {
		return SweepFiles{}, fmt.Errorf("report: no sweep result to write")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SweepFiles{}, fmt.Errorf("report: creating %s: %w: choose a folder you can write to", dir, err)
	}
	files := SweepFiles{HTML: filepath.Join(dir, SweepHTMLFile), JSON: filepath.Join(dir, SweepJSONFile)}
	if err := writeSweepFile(files.JSON, r.WriteJSON); err != nil {
		return SweepFiles{}, err
	}
	if err := writeSweepFile(files.HTML, func(w io.Writer) error { return WriteSweepHTML(w, r) }); err != nil {
		return SweepFiles{}, err
	}
	return files, nil
}

func writeSweepFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("report: %w", cerr)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("report: %s: %w", path, err)
	}
	return nil
}

// sweepPage is what the sweep template renders.
type sweepPage struct {
	Title, Setup, Generated string
	Interrupted             bool
	Rows                    []sweepRow
	Knees                   []sweepKnee
	Cores, RuleOfThumb      int
	Charts                  []htmlChart
}

type sweepRow struct {
	Load, Pool, Calls, Throughput, P50, P99, Errors, Dropped, Marks string
	PeakConns, Attempts, Faulted                                    int
	Knee                                                            bool
}

type sweepKnee struct {
	Load, Plateau, LowestP99, ErrorsBegin, Little, Edge string
}

// WriteSweepHTML writes the sweep as one self-contained HTML page: the table
// with the knee marked, the measured answer beside the rule of thumb and
// Little's law, and two inline SVG charts (throughput and p99 against pool
// size, one line per load level, each knee marked). Nothing is fetched from
// the network.
func WriteSweepHTML(w io.Writer, r *sweep.Result) error {
	page := sweepPage{
		Title: "poolproof pool-sizing sweep: " + r.Service,
		Setup: fmt.Sprintf("latency %s (%s), fault %s, %s per cell, seed %d, %s environment, started %s, took %s",
			r.Latency, r.LatencyVia, r.Fault, r.Duration, r.Seed, r.Environment,
			r.Started.UTC().Format(time.RFC3339), r.Elapsed.Round(time.Millisecond)),
		Generated:   time.Now().UTC().Format(time.RFC3339),
		Interrupted: r.Interrupted,
		Cores:       r.Cores,
		RuleOfThumb: r.RuleOfThumb,
	}
	for _, c := range r.Cells {
		k, _ := r.Knee(c.Concurrency)
		page.Rows = append(page.Rows, sweepRow{
			Load: loadOf(c.Concurrency, c.Rate), Pool: strconv.Itoa(c.Pool), Calls: strconv.Itoa(c.Calls),
			Throughput: fmt.Sprintf("%.1f", c.Throughput), P50: sweep.FormatLatency(c.P50), P99: sweep.FormatLatency(c.P99),
			Errors: fmt.Sprintf("%.1f%%", 100*c.ErrorRate), Dropped: strconv.FormatInt(c.Dropped, 10),
			Marks: k.Marks(c), Knee: c.Pool == k.Plateau,
			PeakConns: c.PeakConns, Attempts: c.Attempts, Faulted: c.Faulted,
		})
	}
	for _, k := range r.Knees {
		sk := sweepKnee{Load: k.LoadLabel(), Plateau: "none (no call succeeded)", LowestP99: "-", ErrorsBegin: "no pool size raised the error rate"}
		if k.AtEdge {
			sk.Edge = "The plateau is the largest pool swept: throughput may still rise beyond it; sweep larger pools."
		}
		if k.Plateau > 0 {
			sk.Plateau = fmt.Sprintf("pool %d (>= 95%% of the best %.1f ok/s)", k.Plateau, k.MaxThroughput)
		}
		if k.LowestP99 > 0 {
			sk.LowestP99 = fmt.Sprintf("pool %d", k.LowestP99)
		}
		if k.ErrorsBegin > 0 {
			sk.ErrorsBegin = fmt.Sprintf("errors begin at pool %d and below", k.ErrorsBegin)
		}
		grid := "beyond the largest pool swept"
		if k.LittleGrid > 0 {
			grid = fmt.Sprintf("pool %d on this grid", k.LittleGrid)
		}
		sk.Little = fmt.Sprintf("%.1f/s x %s = %.1f connections (%s)", k.LittleRate, sweep.FormatLatency(k.LittleLatency), k.LittleEstimate, grid)
		page.Knees = append(page.Knees, sk)
	}
	charts, err := SweepCharts(r)
	if err != nil {
		return err
	}
	page.Charts = charts
	return sweepTemplate.Execute(w, page)
}

// SweepCharts draws the sweep's two charts as inline SVG: throughput and p99
// against pool size (log scale), one line per load level, each load level's
// knee circled.
func SweepCharts(r *sweep.Result) ([]htmlChart, error) {
	type metric struct {
		id, title, yLabel string
		value             func(sweep.Cell) (float64, bool)
	}
	metrics := []metric{
		{"sweep-throughput", "Throughput against pool size", "successful calls/s", func(c sweep.Cell) (float64, bool) {
			return c.Throughput, c.Err == ""
		}},
		{"sweep-p99", "p99 latency against pool size", "p99 of successful calls (ms)", func(c sweep.Cell) (float64, bool) {
			return float64(c.P99) / float64(time.Millisecond), c.Err == "" && c.OK > 0
		}},
	}
	var out []htmlChart
	for _, m := range metrics {
		svg, err := renderSweepChart(r, m.id, m.title, m.yLabel, m.value)
		if err != nil {
			return nil, err
		}
		out = append(out, htmlChart{ID: m.id, Title: m.title, SVG: svg})
	}
	return out, nil
}

func renderSweepChart(r *sweep.Result, id, title, yLabel string, value func(sweep.Cell) (float64, bool)) (template.HTML, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 11
	p.X.Label.Text = "pool size (connections)"
	p.Y.Label.Text = yLabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font.Size = 9
		ax.Tick.Label.Font.Size = 8
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = 8
	p.Legend.ThumbnailWidth = 0.25 * vg.Inch
	p.Add(plotter.NewGrid())
	p.X.Scale = plot.LogScale{}
	var ticks plot.ConstantTicks
	for _, pool := range r.Pools {
		ticks = append(ticks, plot.Tick{Value: float64(pool), Label: strconv.Itoa(pool)})
	}
	p.X.Tick.Marker = ticks
	if len(r.Pools) > 0 {
		lo, hi := float64(r.Pools[0]), float64(r.Pools[len(r.Pools)-1])
		if lo == hi { // a log axis needs a span
			lo, hi = lo/2, hi*2
		}
		p.X.Min, p.X.Max = lo/1.2, hi*1.2
	}

	yMax := 0.0
	for i, k := range r.Knees {
		col := sweepLineColors[i%len(sweepLineColors)]
		var pts, knee plotter.XYs
		for _, c := range r.Cells {
			if c.Concurrency != k.Concurrency {
				continue
			}
			v, ok := value(c)
			if !ok {
				continue
			}
			yMax = max(yMax, v)
			pts = append(pts, plotter.XY{X: float64(c.Pool), Y: v})
			if c.Pool == k.Plateau {
				knee = append(knee, plotter.XY{X: float64(c.Pool), Y: v})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return "", fmt.Errorf("chart %s, %s: %w", id, k.LoadLabel(), err)
		}
		line.Color, line.Width = col, vg.Points(1.4)
		points.Color, points.Radius = col, vg.Points(2)
		p.Add(line, points)
		p.Legend.Add(k.LoadLabel(), line, points)
		if len(knee) > 0 {
			ring, err := plotter.NewScatter(knee)
			if err != nil {
				return "", fmt.Errorf("chart %s, knee of %s: %w", id, k.LoadLabel(), err)
			}
			ring.Color, ring.Radius = col, vg.Points(6)
			ring.Shape = draw.RingGlyph{}
			labels, err := plotter.NewLabels(plotter.XYLabels{XYs: knee, Labels: []string{"knee"}})
			if err != nil {
				return "", fmt.Errorf("chart %s, knee label of %s: %w", id, k.LoadLabel(), err)
			}
			for j := range labels.TextStyle {
				labels.TextStyle[j].Color = col
				labels.TextStyle[j].Font.Size = 8
			}
			labels.Offset = vg.Point{X: vg.Points(7), Y: vg.Points(-10)}
			p.Add(ring, labels)
		}
	}
	if yMax <= 0 {
		yMax = 1
	}
	p.Y.Min, p.Y.Max = 0, yMax*1.2 // room for the legend and the knee labels

	c := vgsvg.NewWith(vgsvg.UseWH(sweepChartWidth, sweepChartHeight), vgsvg.EmbedFonts(false))
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("chart %s: writing SVG: %w", id, err)
	}
	out := sweepSVGProlog.ReplaceAll(buf.Bytes(), []byte("$1"))
	out = sweepSVGNamespaces.ReplaceAll(out, nil)
	out = bytes.Replace(out, []byte("<svg "), fmt.Appendf(nil, `<svg role="img" aria-label="%s" class="chart" data-chart="%s" `,
		template.HTMLEscapeString(title), template.HTMLEscapeString(id)), 1)
	return template.HTML(out), nil //nolint:gosec // gonum's own markup, labels escaped by svgo
}

func loadOf(concurrency int, rate float64) string {
	if concurrency > 0 {
		return strconv.Itoa(concurrency)
	}
	return fmt.Sprintf("%g/s", rate)
}

var sweepTemplate = template.Must(template.New("sweep").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f4f4f4; }
tr.knee td { background: #e6f4ea; font-weight: 600; }
td.marks { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.charts svg { max-width: 100%; height: auto; }
.interrupted { color: #b00020; font-weight: 600; }
.setup { color: #555; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="setup">{{.Setup}}; generated {{.Generated}}</p>
{{if .Interrupted}}<p class="interrupted">Interrupted: only the cells below were measured.</p>{{end}}
<h2>Answer</h2>
{{range .Knees}}<h3>{{.Load}}</h3>
<ul>
<li>measured: throughput plateaus at {{.Plateau}}; lowest p99 at {{.LowestP99}}; {{.ErrorsBegin}}</li>
{{if .Edge}}<li class="interrupted">{{.Edge}}</li>{{end}}
<li>Little's law: {{.Little}}</li>
<li>rule of thumb (cores * 2) + spindles: {{$.Cores}} * 2 + 1 = {{$.RuleOfThumb}}</li>
</ul>
{{end}}
<div class="charts">
{{range .Charts}}<figure>{{.SVG}}</figure>
{{end}}</div>
<h2>Cells</h2>
<table>
<thead><tr><th>load</th><th>pool</th><th>calls</th><th>ok/s</th><th>p50</th><th>p99</th><th>errors</th><th>dropped</th><th title="most connections the server saw open at once">peak conns</th><th title="requests the server saw, retries included">attempts</th><th title="attempts the injected fault hit">faulted</th><th></th></tr></thead>
<tbody>
{{range .Rows}}<tr{{if .Knee}} class="knee"{{end}}><td>{{.Load}}</td><td>{{.Pool}}</td><td>{{.Calls}}</td><td>{{.Throughput}}</td><td>{{.P50}}</td><td>{{.P99}}</td><td>{{.Errors}}</td><td>{{.Dropped}}</td><td>{{.PeakConns}}</td><td>{{.Attempts}}</td><td>{{.Faulted}}</td><td class="marks">{{.Marks}}</td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`))
