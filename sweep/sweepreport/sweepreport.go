// Package sweepreport renders a sweep's result as sweep.html and sweep.json:
// a self-contained page (the table with each load level's knee marked, the
// measured answer beside Little's law and the rule of thumb, and throughput
// and p99 charts against pool size) and the data it was drawn from.
//
// It only reads a sweep.Result: it never runs a cell and never decides where
// the knee is. Like the certificate report, the page is readable offline:
// styles and charts (SVG drawn by gonum/plot) are inline and nothing is
// fetched from the network.
package sweepreport

import (
	"cmp"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/poolproof/poolproof/internal/svgchart"
	"github.com/poolproof/poolproof/sweep"
)

// File names Write writes.
const (
	HTMLFile = "sweep.html"
	JSONFile = "sweep.json"
)

// Chart size in points; the page scales the SVG to its width.
const (
	chartWidth  = 5.5 * vg.Inch
	chartHeight = 3 * vg.Inch
)

// Files are the paths Write wrote.
type Files struct {
	HTML string
	JSON string
}

// Write writes sweep.html (the table and the charts, self-contained) and
// sweep.json (the data) into dir, creating it if needed.
func Write(dir string, r *sweep.Result) (Files, error) {
	if r == nil {
		return Files{}, fmt.Errorf("sweepreport: no sweep result to write")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("sweepreport: creating %s: %w: choose a folder you can write to", dir, err)
	}
	files := Files{HTML: filepath.Join(dir, HTMLFile), JSON: filepath.Join(dir, JSONFile)}
	if err := writeFile(files.JSON, r.WriteJSON); err != nil {
		return Files{}, err
	}
	if err := writeFile(files.HTML, func(w io.Writer) error { return WriteHTML(w, r) }); err != nil {
		return Files{}, err
	}
	return files, nil
}

func writeFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sweepreport: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("sweepreport: %w", cerr)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("sweepreport: %s: %w", path, err)
	}
	return nil
}

// page is what the page template renders.
type page struct {
	Title, Setup, Generated string
	FixedPool               string // what the sweep varied, for a client whose pool is its own
	Interrupted             bool
	Rows                    []row
	Knees                   []knee
	Cores, RuleOfThumb      int
	Charts                  []svgchart.Chart
}

type row struct {
	Load, Pool, Calls, Throughput, P50, P99, Errors, Dropped, Marks string
	ThroughputSpread, P99Spread                                     string
	PeakConns, Attempts, Faulted                                    int
	Knee                                                            bool
}

type knee struct {
	Load, Plateau, LowestP99, ErrorsBegin, Little, Edge string
}

// WriteHTML writes the sweep as one self-contained HTML page: the table
// with the knee marked, the measured answer beside the rule of thumb and
// Little's law, and two inline SVG charts (throughput and p99 against pool
// size, one line per load level, each knee marked). Nothing is fetched from
// the network.
func WriteHTML(w io.Writer, r *sweep.Result) error {
	pg := page{
		Title: "poolproof pool-sizing sweep: " + r.Service,
		Setup: fmt.Sprintf("%s client, latency %s (%s), fault %s, %s per cell, %s, seed %d, %s environment, started %s, took %s",
			cmp.Or(r.Client, "reference"), r.Latency, r.LatencyVia, r.Fault, r.Duration, r.RunsLabel(), r.Seed, r.Environment,
			r.Started.UTC().Format(time.RFC3339), r.Elapsed.Round(time.Millisecond)),
		Generated:   time.Now().UTC().Format(time.RFC3339),
		Interrupted: r.Interrupted,
		Cores:       r.Cores,
		RuleOfThumb: r.RuleOfThumb,
	}
	if r.FixedPool {
		pg.FixedPool = sweep.FixedPoolNote
	}
	for _, c := range r.Cells {
		k, _ := r.Knee(c.Concurrency)
		pool := strconv.Itoa(c.Pool)
		if r.FixedPool {
			pool = "own"
		}
		tputSpread, p99Spread := c.Spread.Format()
		pg.Rows = append(pg.Rows, row{
			ThroughputSpread: tputSpread, P99Spread: p99Spread,
			Load: loadOf(c.Concurrency, c.Rate), Pool: pool, Calls: strconv.Itoa(c.Calls),
			Throughput: fmt.Sprintf("%.1f", c.Throughput), P50: sweep.FormatLatency(c.P50), P99: sweep.FormatLatency(c.P99),
			Errors: fmt.Sprintf("%.1f%%", 100*c.ErrorRate), Dropped: strconv.FormatInt(c.Dropped, 10),
			Marks: k.Marks(c), Knee: k.Plateau > 0 && c.Pool == k.Plateau,
			PeakConns: c.PeakConns, Attempts: c.Attempts, Faulted: c.Faulted,
		})
	}
	for _, k := range r.Knees {
		sk := knee{Load: k.LoadLabel(), Plateau: "none (no call succeeded)", LowestP99: "-", ErrorsBegin: "no pool size raised the error rate"}
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
		pg.Knees = append(pg.Knees, sk)
	}
	ch, err := charts(r)
	if err != nil {
		return err
	}
	pg.Charts = ch
	return pageTemplate.Execute(w, pg)
}

// charts draws the sweep's two charts as inline SVG: throughput and p99
// against pool size (log scale), one line per load level, each load level's
// knee circled.
func charts(r *sweep.Result) ([]svgchart.Chart, error) {
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
	var out []svgchart.Chart
	for _, m := range metrics {
		c, err := renderChart(r, m.id, m.title, m.yLabel, m.value)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func renderChart(r *sweep.Result, id, title, yLabel string, value func(sweep.Cell) (float64, bool)) (svgchart.Chart, error) {
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
	xs, groups := r.Pools, r.Knees
	xOf := func(c sweep.Cell) float64 { return float64(c.Pool) }
	inGroup := func(k sweep.Knee, c sweep.Cell) bool { return c.Concurrency == k.Concurrency }
	if r.FixedPool {
		// The client's pool is its own: one line against the load.
		p.X.Label.Text = "load (closed-loop workers, or the offered rate)"
		xs, groups = nil, []sweep.Knee{{}}
		for _, c := range r.Cells {
			if !slices.Contains(xs, loadX(c)) {
				xs = append(xs, loadX(c))
			}
		}
		slices.Sort(xs)
		xOf = func(c sweep.Cell) float64 { return float64(loadX(c)) }
		inGroup = func(sweep.Knee, sweep.Cell) bool { return true }
	}
	var ticks plot.ConstantTicks
	for _, x := range xs {
		ticks = append(ticks, plot.Tick{Value: float64(x), Label: strconv.Itoa(x)})
	}
	p.X.Tick.Marker = ticks
	if len(xs) > 0 {
		lo, hi := float64(xs[0]), float64(xs[len(xs)-1])
		if lo == hi { // a log axis needs a span
			lo, hi = lo/2, hi*2
		}
		p.X.Min, p.X.Max = lo/1.2, hi*1.2
	}

	yMax := 0.0
	type kneePoint struct {
		at  plotter.XY
		col color.Color
	}
	var knees []kneePoint
	for i, k := range groups {
		col := svgchart.Color(i)
		var pts plotter.XYs
		for _, c := range r.Cells {
			if !inGroup(k, c) {
				continue
			}
			v, ok := value(c)
			if !ok {
				continue
			}
			yMax = max(yMax, v)
			pts = append(pts, plotter.XY{X: xOf(c), Y: v})
			if k.Plateau > 0 && c.Pool == k.Plateau {
				knees = append(knees, kneePoint{plotter.XY{X: xOf(c), Y: v}, col})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return svgchart.Chart{}, fmt.Errorf("chart %s, %s: %w", id, k.LoadLabel(), err)
		}
		line.Color, line.Width = col, vg.Points(1.4)
		points.Color, points.Radius = col, vg.Points(2)
		p.Add(line, points)
		label := k.LoadLabel()
		if r.FixedPool {
			label = "the client's own pool"
		}
		p.Legend.Add(label, line, points)
	}
	if yMax <= 0 {
		yMax = 1
	}
	p.Y.Min, p.Y.Max = 0, yMax*1.2 // room for the legend and the knee labels
	for _, kp := range knees {
		knee := plotter.XYs{kp.at}
		ring, err := plotter.NewScatter(knee)
		if err != nil {
			return svgchart.Chart{}, fmt.Errorf("chart %s, knee: %w", id, err)
		}
		ring.Color, ring.Radius = kp.col, vg.Points(6)
		ring.Shape = draw.RingGlyph{}
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: knee, Labels: []string{kneeLabel}})
		if err != nil {
			return svgchart.Chart{}, fmt.Errorf("chart %s, knee label: %w", id, err)
		}
		for j := range labels.TextStyle {
			labels.TextStyle[j].Color = kp.col
			labels.TextStyle[j].Font.Size = 8
		}
		labels.Offset = kneeLabelOffset(kp.at, p.X.Max, p.Y.Max)
		p.Add(ring, labels)
	}
	return svgchart.Render(p, id, title, chartWidth, chartHeight)
}

// kneeLabel is the text beside a knee's ring.
const kneeLabel = "knee"

// kneeLabelOffset places a knee's label beside its ring, inside the chart:
// right of the ring and below it by default; left of it when the ring is
// near the right edge (the knee is often the largest pool), above it when
// the ring is near the bottom. x is on the chart's log axis.
func kneeLabelOffset(at plotter.XY, xMax, yMax float64) vg.Point {
	off := vg.Point{X: vg.Points(7), Y: vg.Points(-10)}
	if xMax > 0 && at.X*1.5 > xMax { // within a third of a doubling of the edge
		off.X = -vg.Points(7) - vg.Points(4.5*float64(len(kneeLabel))) // the label's width at 8pt, about
	}
	if yMax > 0 && at.Y < 0.15*yMax {
		off.Y = vg.Points(6)
	}
	return off
}

// loadX is a cell's load: its workers, or its offered rate.
func loadX(c sweep.Cell) int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return int(c.Rate)
}
func loadOf(concurrency int, rate float64) string {
	if concurrency > 0 {
		return strconv.Itoa(concurrency)
	}
	return fmt.Sprintf("%g/s", rate)
}

var pageTemplate = template.Must(template.New("sweep").Parse(`<!DOCTYPE html>
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
{{if .FixedPool}}<p class="interrupted">{{.FixedPool}}</p>{{end}}
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
<thead><tr><th>load</th><th>pool</th><th>calls</th><th>ok/s</th><th title="throughput of the cell's runs: lowest-highest (standard deviation)">ok/s min-max (sd)</th><th>p50</th><th>p99</th><th title="p99 of the cell's runs: lowest-highest">p99 min-max</th><th>errors</th><th>dropped</th><th title="most connections the server saw open at once">peak conns</th><th title="requests the server saw, retries included">attempts</th><th title="attempts the injected fault hit">faulted</th><th></th></tr></thead>
<tbody>
{{range .Rows}}<tr{{if .Knee}} class="knee"{{end}}><td>{{.Load}}</td><td>{{.Pool}}</td><td>{{.Calls}}</td><td>{{.Throughput}}</td><td>{{.ThroughputSpread}}</td><td>{{.P50}}</td><td>{{.P99}}</td><td>{{.P99Spread}}</td><td>{{.Errors}}</td><td>{{.Dropped}}</td><td>{{.PeakConns}}</td><td>{{.Attempts}}</td><td>{{.Faulted}}</td><td class="marks">{{.Marks}}</td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`))
