package pooledclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On this Go the attempt's context answers httptrace's key itself; if a
// later net/http changed how it looks traces up, this says so (the client
// would still work, through WithClientTrace, one allocation dearer).
func TestTraceKeyIsLearnt(t *testing.T) {
	require.NotNil(t, traceKey)
	c := &call{}
	c.ctx = attemptCtx{Context: context.Background(), c: c}
	ctx := c.traceContext(context.Background())
	assert.True(t, c.ownsTrace)
	assert.Same(t, &c.trace, httptrace.ContextClientTrace(ctx))
}

// A caller's own trace still sees every connection, and the client still
// tracks which connection carries which call: the two traces are composed.
func TestCallerTraceIsComposedWithTheClients(t *testing.T) {
	srv := newCountingServer(t, okHandler)
	c, _ := newTestClient(t, testConfig(srv.URL))
	var got []httptrace.GotConnInfo
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { got = append(got, info) },
	})
	for i := range 5 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		assert.Equal(t, 1, c.Stats().Active, "call %d: the client bound its connection", i)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Zero(t, c.Stats().Active, "call %d", i)
	}
	require.Len(t, got, 5, "the caller's GotConn ran once per call")
	for _, info := range got[1:] {
		assert.True(t, info.Reused)
	}
}
