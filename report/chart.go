package report

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/svgchart"
)

// Chart size in points; the page scales the SVG to its grid cell.
const (
	chartWidth  = 5 * vg.Inch
	chartHeight = 2.6 * vg.Inch
)

// faultColors shade a service's fault windows; light enough that the lines
// drawn over them stay readable.
var faultColors = map[string]color.NRGBA{
	"payment":      {230, 159, 0, 60},
	"inventory":    {86, 180, 233, 60},
	"notification": {240, 228, 66, 90},
}

func faultColor(service string) color.NRGBA {
	if c, ok := faultColors[service]; ok {
		return c
	}
	return color.NRGBA{128, 128, 128, 50}
}

// series is one line of a chart. A NaN value is a gap: the line is broken
// there instead of joining two readings across a span with no data.
type series struct {
	name   string
	points []Point
	dashed bool
	dotted bool
	// marks draws each point as a red cross, no line: single events (a
	// hung call) that a line through buckets would hide.
	marks bool
}

// chartSpec is one chart of a scenario's timeline.
type chartSpec struct {
	id     string
	title  string
	yLabel string
	series []series
	// legend names the lines even when there is one (a service name).
	legend bool
}

// renderChart draws spec over [0, xMax] seconds with windows shaded and
// numbered (F1, F2...), as inline SVG.
func renderChart(spec chartSpec, windows []harness.Window, xMax float64) (svgchart.Chart, error) {
	p := plot.New()
	p.Title.Text = spec.title
	p.Title.TextStyle.Font = sans(11)
	p.X.Label.Text = "seconds since the workload started"
	p.Y.Label.Text = spec.yLabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = sans(9)
		ax.Tick.Label.Font = sans(8)
		ax.Tick.Marker = plainTicks{}
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font = sans(8)
	p.Legend.ThumbnailWidth = 0.25 * vg.Inch
	p.Add(plotter.NewGrid())

	yMax := 0.0
	for _, s := range spec.series {
		for _, pt := range s.points {
			if !math.IsNaN(pt.Value) {
				yMax = max(yMax, pt.Value)
			}
		}
	}
	if yMax <= 0 {
		yMax = 1
	}
	yMax *= 1.15 // room for the legend and the window labels
	p.X.Min, p.X.Max = 0, max(xMax, 0.1)
	p.Y.Min, p.Y.Max = 0, yMax

	if err := shadeWindows(p, windows, yMax, p.X.Max); err != nil {
		return svgchart.Chart{}, err
	}
	for i, s := range spec.series {
		col := svgchart.Color(i)
		if s.marks {
			if err := addMarks(p, s); err != nil {
				return svgchart.Chart{}, fmt.Errorf("chart %s, series %s: %w", spec.id, s.name, err)
			}
			continue
		}
		first := true
		for _, seg := range segments(s.points) {
			l, err := plotter.NewLine(seg)
			if err != nil {
				return svgchart.Chart{}, fmt.Errorf("chart %s, series %s: %w", spec.id, s.name, err)
			}
			l.Color = col
			l.Width = vg.Points(1.2)
			switch {
			case s.dashed:
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			case s.dotted:
				l.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
			}
			p.Add(l)
			if len(seg) == 1 { // a lone reading between gaps would be invisible as a line
				sc, err := plotter.NewScatter(seg)
				if err != nil {
					return svgchart.Chart{}, fmt.Errorf("chart %s, series %s: %w", spec.id, s.name, err)
				}
				sc.Color = col
				sc.Radius = vg.Points(1.5)
				p.Add(sc)
			}
			if first && (len(spec.series) > 1 || spec.legend) {
				p.Legend.Add(s.name, l)
				first = false
			}
		}
	}

	return svgchart.Render(p, spec.id, spec.title, chartWidth, chartHeight)
}

// shadeWindows draws each fault window as a translucent band over the whole
// height, labelled F1, F2... at the top (the page lists what each one was).
func shadeWindows(p *plot.Plot, windows []harness.Window, yMax, xMax float64) error {
	var labels plotter.XYLabels
	near := 0.06 * xMax // labels closer than this would overprint: stack them
	for i, w := range windows {
		x0, x1 := w.Start.Seconds(), w.End.Seconds()
		if x1 <= x0 {
			x1 = x0 + 0.01
		}
		band, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: yMax}, {X: x0, Y: yMax}})
		if err != nil {
			return fmt.Errorf("fault window %d: %w", i+1, err)
		}
		band.Color = faultColor(w.Service)
		band.LineStyle.Width = 0
		p.Add(band)
		row := 0
		for _, prev := range labels.XYs {
			if math.Abs(prev.X-x0) < near {
				row++
			}
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: x0, Y: yMax * (1 - 0.09*float64(row))})
		labels.Labels = append(labels.Labels, windowName(i))
	}
	if len(labels.XYs) == 0 {
		return nil
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return fmt.Errorf("fault window labels: %w", err)
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font = sans(8)
		l.TextStyle[i].Color = color.RGBA{80, 80, 80, 255}
		l.TextStyle[i].YAlign = -1 // hang below the top edge
	}
	l.Offset = vg.Point{X: vg.Points(2), Y: vg.Points(-2)}
	p.Add(l)
	return nil
}

// sans is Liberation Sans, which gonum embeds for measuring text; the page's
// CSS falls back to metric-compatible system fonts where it is not installed
// (gonum's default, Liberation Serif, would fall back to Times).
func sans(size vg.Length) font.Font {
	return font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
}

// plainTicks are gonum's default ticks labelled without trailing zeros
// ("250", not "250.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(math.Round(t.Value*1e6)/1e6, 'f', -1, 64)
		}
	}
	return ticks
}

func windowName(i int) string { return fmt.Sprintf("F%d", i+1) }

// segments splits points at NaN values.
func segments(points []Point) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for _, pt := range points {
		if math.IsNaN(pt.Value) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: pt.At, Y: pt.Value})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// hungColor is the marks' red, apart from the series palette.
var hungColor = color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}

// addMarks draws s's points as red crosses, with a legend entry.
func addMarks(p *plot.Plot, s series) error {
	xys := make(plotter.XYs, 0, len(s.points))
	for _, pt := range s.points {
		if !math.IsNaN(pt.Value) {
			xys = append(xys, plotter.XY{X: pt.At, Y: pt.Value})
		}
	}
	if len(xys) == 0 {
		return nil
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	sc.Color = hungColor
	sc.Radius = vg.Points(4)
	sc.Shape = draw.CrossGlyph{}
	p.Add(sc)
	p.Legend.Add(s.name, sc)
	return nil
}
