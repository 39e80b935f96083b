package harness

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripFunc is a RoundTripper with no teardown method.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// closingTransport is a RoundTripper with both teardown methods, as
// HTTP/3 transports have.
type closingTransport struct{ countingClient }

func (t *closingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("unused")
}

func teardownMethods(calls []TeardownCall) []string {
	out := []string{}
	for _, c := range calls {
		out = append(out, c.Method)
	}
	return out
}

func TestAdaptersHaveTheTeardownOfWhatTheyAdapt(t *testing.T) {
	var attached int
	both := &closingTransport{}
	tests := []struct {
		name   string
		client Client
		want   []string
	}{
		{"a RoundTripper without teardown", RoundTripperClient(roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("unused") })), []string{}},
		{"an http.Transport", RoundTripperClient(&http.Transport{}), []string{"CloseIdleConnections"}},
		{"a RoundTripper with both", RoundTripperClient(both), []string{"CloseIdleConnections", "Close"}},
		{"a CallFunc", CallFunc(func(context.Context, string, string, http.Header, []byte) (int, http.Header, []byte, error) {
			return 0, nil, nil, errors.New("unused")
		}), []string{}},
		{"a CallFunc with an attached CloseIdleConnections", AttachTeardown(CallFunc(nil), func() { attached++ }, nil), []string{"CloseIdleConnections"}},
		{"a client keeps its own teardown where none is attached", AttachTeardown(&countingClient{}, func() { attached++ }, nil), []string{"CloseIdleConnections", "Close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := teardownClients(context.Background(), map[string]Client{"inventory": tt.client}, time.Second, nil)
			assert.Equal(t, tt.want, teardownMethods(calls))
			for _, c := range calls {
				assert.Empty(t, c.Err)
			}
		})
	}
	assert.Equal(t, int32(1), both.idle.Load(), "the RoundTripper's own CloseIdleConnections was called")
	assert.Equal(t, int32(1), both.closed.Load())
	assert.Equal(t, 2, attached, "the attached CloseIdleConnections replaced the client's own")
}

func TestAdaptersOfNothingSayWhatToPass(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	require.NoError(t, err)
	for _, c := range []Client{RoundTripperClient(nil), AttachTeardown(nil, nil, nil)} {
		resp, err := c.Do(req)
		assert.Nil(t, resp)
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), "is nil: pass"), "%v", err)
	}
}

func TestResetClientIsBoundedAndNamesTheHook(t *testing.T) {
	boom := errors.New("pool still draining")
	park := make(chan struct{})
	t.Cleanup(func() { close(park) })
	tests := []struct {
		name    string
		reset   func(context.Context) error
		wantErr []string
	}{
		{"no hook", nil, nil},
		{"a hook that succeeds", func(context.Context) error { return nil }, nil},
		{"a hook that fails", func(context.Context) error { return boom }, []string{"client reset hook (WithClientReset) failed: pool still draining", "fix the hook"}},
		{"a hook that ignores its context", func(context.Context) error { <-park; return nil }, []string{"client reset hook (WithClientReset) did not return within 50ms", "return when its context ends"}},
		{"a hook that panics", func(context.Context) error { panic("nil pool") }, []string{"client reset hook (WithClientReset) failed", "panicked: nil pool"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := resetClient(context.Background(), tt.reset, 50*time.Millisecond)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, s := range tt.wantErr {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
	err := resetClient(context.Background(), func(context.Context) error { return boom }, time.Second)
	assert.ErrorIs(t, err, boom, "the hook's error is wrapped, not flattened")
}
