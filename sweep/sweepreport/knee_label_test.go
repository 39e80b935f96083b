package sweepreport

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"gonum.org/v1/plot/plotter"
)

func TestKneeLabelStaysInsideTheChart(t *testing.T) {
	const xMax, yMax = 32 * 1.2, 120.0
	mid := kneeLabelOffset(plotter.XY{X: 4, Y: 60}, xMax, yMax)
	assert.Positive(t, float64(mid.X), "right of a knee mid-chart")
	assert.Negative(t, float64(mid.Y), "below it")

	edge := kneeLabelOffset(plotter.XY{X: 32, Y: 100}, xMax, yMax)
	assert.Negative(t, float64(edge.X)+4.5*float64(len(kneeLabel)), "a knee at the largest pool: the whole label left of the ring")

	low := kneeLabelOffset(plotter.XY{X: 2, Y: 5}, xMax, yMax)
	assert.Positive(t, float64(low.Y), "a knee near the bottom: the label above it")
}
