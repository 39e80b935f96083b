package driver_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/drivertest"
)

func newFakeFactory(t *testing.T, mode string) *driver.Factory {
	t.Helper()
	cmd, env := fakeCmd(mode)
	f := driver.NewFactory(context.Background(), cmd, fakeServices, harness.DefaultProfile(),
		driver.WithEnv(env...), driver.WithInitTimeout(10*time.Second))
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestFactoryStartsOneProcessPerRunForEveryService(t *testing.T) {
	pipes := openPipes(t)
	f := newFakeFactory(t, "ok")
	inventory, payment := fakeServices[0], fakeServices[1]

	// A run asks for each of its services once: one process serves them.
	a, err := f.Client(inventory)
	require.NoError(t, err)
	b, err := f.Client(payment)
	require.NoError(t, err)
	assert.Same(t, a, b, "one process for every service of a run")
	assert.Equal(t, "fake-ok", f.Info().Driver)

	// The run's teardown closes it; the next run gets a new one.
	require.NoError(t, a.(*driver.Process).Close())
	c, err := f.Client(inventory)
	require.NoError(t, err)
	assert.NotSame(t, a, c)

	// A service asked for again is the next run, even when the previous
	// one was not closed.
	d, err := f.Client(inventory)
	require.NoError(t, err)
	assert.NotSame(t, c, d)
	assert.ErrorIs(t, c.(*driver.Process).Err(), driver.ErrClosed, "the unfinished run's process was closed")

	_, err = f.Client(harness.Service{Name: "notification", BaseURL: "http://127.0.0.1:3"})
	assert.ErrorContains(t, err, "service notification is not among the services the factory was given")

	require.NoError(t, f.Close())
	assert.ErrorIs(t, d.(*driver.Process).Err(), driver.ErrClosed)
	checkClean(t, 0, pipes)
}

func TestFactoryDoesNotRestartADriverThatFailedToStart(t *testing.T) {
	f := newFakeFactory(t, "exit-at-init")
	_, err := f.Client(fakeServices[0])
	require.ErrorIs(t, err, driver.ErrExited)
	start := time.Now()
	_, again := f.Client(fakeServices[0])
	require.ErrorIs(t, again, driver.ErrExited)
	assert.ErrorContains(t, again, "not started again: ")
	assert.Less(t, time.Since(start), time.Second, "the same error at once")
	drivertest.RequireNothingLeft(t, 0)
}
