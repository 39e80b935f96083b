package svgchart_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/poolproof/poolproof/internal/svgchart"
)

func TestRenderIsInlineSVGWithoutURLs(t *testing.T) {
	p := plot.New()
	line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 1}, {X: 1, Y: 2}})
	require.NoError(t, err)
	line.Color = svgchart.Color(0)
	p.Add(line)

	c, err := svgchart.Render(p, "tput", `calls "ok" & <failed>`, 4*vg.Inch, 2*vg.Inch)
	require.NoError(t, err)
	assert.Equal(t, "tput", c.ID)
	assert.Equal(t, `calls "ok" & <failed>`, c.Title)
	svg := string(c.SVG)
	assert.True(t, strings.HasPrefix(svg, `<svg role="img" aria-label="calls &#34;ok&#34; &amp; &lt;failed&gt;" class="chart" data-chart="tput" `), "starts with the labelled <svg>, no XML prolog: %.120s", svg)
	for _, banned := range []string{"<?xml", "xmlns", "http://", "https://"} {
		assert.NotContains(t, svg, banned)
	}
	assert.Equal(t, 1, strings.Count(svg, "<svg"))
}

func TestColorCycles(t *testing.T) {
	assert.Equal(t, svgchart.Color(0), svgchart.Color(6))
	assert.NotEqual(t, svgchart.Color(0), svgchart.Color(1))
}
