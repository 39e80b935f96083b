package harness_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

// goneClient serves calls until it "dies": then every call fails at once
// with an error wrapping ErrClientGone, as a driver that crashed.
type goneClient struct {
	inner *http.Client
	mu    sync.Mutex
	left  int
}

func (c *goneClient) Do(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.left--
	dead := c.left < 0
	c.mu.Unlock()
	if dead {
		return nil, fmt.Errorf("driver exited: %w", harness.ErrClientGone)
	}
	return c.inner.Do(req)
}

func TestRunEndsTheWorkloadWhenTheClientIsGone(t *testing.T) {
	env := newEmbeddedEnv(t)
	spec := harnesstest.ShortSpec("gone", 9)
	spec.Workload.Duration = time.Minute
	spec.Workload.Mix = harness.Mix{Inventory: 1}
	c := &goneClient{inner: &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(env.Services()[0], 16)}, left: 20}
	h, err := harness.Run(harnesstest.Ctx(t), env, func(harness.Service) (harness.Client, error) { return c, nil }, spec)
	require.NoError(t, err)
	assert.Less(t, h.Elapsed, 30*time.Second, "the run ended long before its minute")
	gone := 0
	for _, call := range h.Calls {
		if call.Class != harness.ClassNone {
			gone++
			assert.Contains(t, h.ErrorText(call), "driver exited")
		}
	}
	assert.Positive(t, gone)
	assert.LessOrEqual(t, gone, spec.Workload.Workers, "at most one failed call per worker after the client is gone")
}
