package harness

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type countingClient struct {
	idle, closed atomic.Int32
	closeErr     error
	block        chan struct{}
}

func (c *countingClient) Do(*http.Request) (*http.Response, error) { return nil, errors.New("unused") }
func (c *countingClient) CloseIdleConnections()                    { c.idle.Add(1) }
func (c *countingClient) Close() error {
	c.closed.Add(1)
	if c.block != nil {
		<-c.block
	}
	return c.closeErr
}

type doOnly struct{}

func (doOnly) Do(*http.Request) (*http.Response, error) { return nil, errors.New("unused") }

type valueClient struct{ m map[string]int } // not comparable

func (valueClient) Do(*http.Request) (*http.Response, error) { return nil, errors.New("unused") }
func (valueClient) CloseIdleConnections()                    {}

func TestTeardownCallsWhatTheClientHas(t *testing.T) {
	shared := &countingClient{closeErr: errors.New("flush failed")}
	var (
		between [2]int32
		idle    []TeardownCall
	)
	calls := teardownClients(context.Background(), map[string]Client{
		"inventory": shared, "payment": shared, "notification": doOnly{}, "other": valueClient{},
	}, time.Second, func(done []TeardownCall) {
		between, idle = [2]int32{shared.idle.Load(), shared.closed.Load()}, done
	})
	assert.Equal(t, int32(1), shared.idle.Load(), "a shared client is torn down once")
	assert.Equal(t, int32(1), shared.closed.Load())
	assert.Equal(t, [2]int32{1, 0}, between, "beforeClose runs after every idle close and before any Close")
	require.Len(t, calls, 3)
	assert.Equal(t, calls[:2], idle, "beforeClose is handed the idle closes")
	assert.Equal(t, TeardownCall{Service: "inventory", Method: "CloseIdleConnections", Took: calls[0].Took}, calls[0])
	assert.Equal(t, TeardownCall{Service: "other", Method: "CloseIdleConnections", Took: calls[1].Took}, calls[1])
	assert.Equal(t, "Close", calls[2].Method)
	assert.Equal(t, "inventory", calls[2].Service)
	assert.Equal(t, "flush failed", calls[2].Err)
}

func TestTeardownIsBoundedWhenCloseHangs(t *testing.T) {
	c := &countingClient{block: make(chan struct{})}
	t.Cleanup(func() { close(c.block) })
	start := time.Now()
	calls := teardownClients(context.Background(), map[string]Client{"payment": c}, 100*time.Millisecond, nil)
	assert.Less(t, time.Since(start), 5*time.Second)
	require.Len(t, calls, 2)
	assert.True(t, calls[1].Hung)
	assert.Contains(t, calls[1].Err, "did not return within 100ms")
}

func TestClosedOwnIdleNamesTheClientsThatClosedThemselves(t *testing.T) {
	hangs := &countingClient{block: make(chan struct{})}
	t.Cleanup(func() { close(hangs.block) })
	shared := &countingClient{}
	clients := map[string]Client{"inventory": shared, "payment": shared, "notification": doOnly{}, "other": valueClient{}, "stuck": hangs}
	calls := teardownClients(context.Background(), clients, 100*time.Millisecond, nil)
	assert.Equal(t, map[string]bool{"inventory": true, "payment": true, "other": true, "stuck": false}, closedOwnIdle(clients, calls),
		"a client with Do alone closed nothing; one whose Close hung may not have")
}
