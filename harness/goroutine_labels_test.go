package harness

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLabelledGoroutinesCountsOnlyTheRunsOwn(t *testing.T) {
	p := &parker{park: make(chan struct{})}
	t.Cleanup(func() { close(p.park) })
	run, other := newRunLabel("pp-test"), newRunLabel("pp-test")
	require.NotEqual(t, run, other, "two runs of the same scenario and seed get different labels")

	withRunLabel(context.Background(), run, func(context.Context) {
		p.start(3)
		// Started by a goroutine of the run: inherits the label.
		done := make(chan struct{})
		go func() { p.start(2); close(done) }()
		<-done
	})
	withRunLabel(context.Background(), other, func(context.Context) { p.start(4) })
	p.start(5) // no label: not the run's

	n, gs, err := labelledGoroutines(run, nil)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	require.Len(t, gs, 1, "one entry per stack")
	assert.Equal(t, LeakedGoroutine{
		Entry: "github.com/poolproof/poolproof/harness.(*parker).wait",
		Top:   "github.com/poolproof/poolproof/harness.(*parker).wait",
		Count: 5,
	}, gs[0])

	n, _, err = labelledGoroutines(run, []string{"github.com/poolproof/poolproof/harness.(*parker).wait"})
	require.NoError(t, err)
	assert.Zero(t, n, "goroutines running an environment function are not the client's")

	n, _, err = labelledGoroutines(newRunLabel("pp-test"), nil)
	require.NoError(t, err)
	assert.Zero(t, n)
}
