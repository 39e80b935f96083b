// Package svgchart turns a gonum/plot chart into SVG markup for a
// self-contained HTML page, and holds the palette those charts share. The
// certificate report (package report) and the sweep page (package
// sweep/sweepreport) both draw through it, so their charts look alike and
// neither page carries a URL.
package svgchart

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"regexp"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// palette is Okabe-Ito's, colour-blind friendly; lines take its colours in
// order.
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{0, 158, 115, 255},   // green
	color.RGBA{204, 121, 167, 255}, // purple
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{86, 180, 233, 255},  // sky blue
}

// Color is the colour of a chart's i-th line, starting again after the last.
func Color(i int) color.Color { return palette[i%len(palette)] }

// Chart is one chart of a page: the id the page and its tests find it by
// (data-chart), its title and its inline SVG.
type Chart struct {
	ID, Title string
	SVG       template.HTML
}

// gonum writes an XML prolog and namespace declarations; inline SVG in HTML
// needs neither, and dropping them leaves the page without a single URL, not
// even a namespace name that is never fetched.
var (
	svgProlog     = regexp.MustCompile(`(?s)\A.*?(<svg\b)`)
	svgNamespaces = regexp.MustCompile(`\s+xmlns(:xlink)?="[^"]*"`)
)

// Render draws p at width x height (points; the page's CSS scales it) as
// inline SVG with fonts referenced, not embedded, and labels the <svg> with
// role="img", aria-label (the title), class="chart" and data-chart (the id).
func Render(p *plot.Plot, id, title string, width, height vg.Length) (Chart, error) {
	c := vgsvg.NewWith(vgsvg.UseWH(width, height), vgsvg.EmbedFonts(false))
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return Chart{}, fmt.Errorf("chart %s: writing SVG: %w", id, err)
	}
	out := svgProlog.ReplaceAll(buf.Bytes(), []byte("$1"))
	out = svgNamespaces.ReplaceAll(out, nil)
	out = bytes.Replace(out, []byte("<svg "), fmt.Appendf(nil, `<svg role="img" aria-label="%s" class="chart" data-chart="%s" `,
		template.HTMLEscapeString(title), template.HTMLEscapeString(id)), 1)
	return Chart{ID: id, Title: title, SVG: template.HTML(out)}, nil //nolint:gosec // gonum's own markup, labels escaped by svgo
}
