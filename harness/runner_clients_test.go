package harness_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/harnesstest"
	"github.com/stretchr/testify/require"
)

// newEmbeddedEnv starts an embedded environment owned by the test.
func newEmbeddedEnv(t testing.TB, opts ...env.Option) *env.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := env.NewEmbedded(ctx, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// goroutineLeaker leaks one goroutine per call, parked until the test ends.
type goroutineLeaker struct {
	inner *http.Client
	park  chan struct{}
}

func (l *goroutineLeaker) Do(req *http.Request) (*http.Response, error) {
	go func() { <-l.park }()
	return l.inner.Do(req)
}

func (l *goroutineLeaker) CloseIdleConnections() { l.inner.CloseIdleConnections() }

func goroutineLeakerFactory(t testing.TB) harness.ClientFactory {
	park := make(chan struct{})
	t.Cleanup(func() { close(park) })
	return func(svc harness.Service) (harness.Client, error) {
		return &goroutineLeaker{inner: &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(svc, 16)}, park: park}, nil
	}
}

// spawnerLeaker leaks one goroutine per call too, but has it started by a
// goroutine that existed before the run (as a worker pool built at init
// would), so the leaked goroutines do not carry the run's label.
type spawnerLeaker struct {
	inner *http.Client
	spawn chan<- struct{}
}

func (l *spawnerLeaker) Do(req *http.Request) (*http.Response, error) {
	l.spawn <- struct{}{}
	return l.inner.Do(req)
}

func (l *spawnerLeaker) CloseIdleConnections() { l.inner.CloseIdleConnections() }

func (l *spawnerLeaker) park(stop <-chan struct{}) { <-stop }

func spawnerLeakerFactory(t testing.TB) harness.ClientFactory {
	spawn, stop := make(chan struct{}), make(chan struct{})
	l := &spawnerLeaker{spawn: spawn}
	go func() {
		for {
			select {
			case <-spawn:
				go l.park(stop)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop) })
	return func(svc harness.Service) (harness.Client, error) {
		return &spawnerLeaker{inner: &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(svc, 16)}, spawn: spawn}, nil
	}
}

// bodyDropper "retries" every call: it first issues the request and drops
// the response without reading or closing its body, then issues it again.
// Each dropped body keeps its connection busy forever, so the pool can never
// reuse or close it. The test closes the dropped bodies at cleanup.
type bodyDropper struct {
	inner *http.Client
	mu    *sync.Mutex
	drops *[]io.Closer
}

func (b *bodyDropper) Do(req *http.Request) (*http.Response, error) {
	first := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		first.Body = body
	}
	if resp, err := b.inner.Do(first); err == nil {
		b.mu.Lock()
		*b.drops = append(*b.drops, resp.Body) // the bug: never read, never closed
		b.mu.Unlock()
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		req.Body = body
	}
	return b.inner.Do(req)
}

func (b *bodyDropper) CloseIdleConnections() { b.inner.CloseIdleConnections() }

func bodyDropperFactory(t testing.TB) harness.ClientFactory {
	var (
		mu    sync.Mutex
		drops []io.Closer
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range drops {
			_ = d.Close()
		}
	})
	return func(svc harness.Service) (harness.Client, error) {
		// No MaxConnsPerHost: a bounded pool would turn the leak into a hang.
		tr := harnesstest.StdTransport(svc, 0)
		return &bodyDropper{inner: &http.Client{Timeout: 2 * time.Second, Transport: tr}, mu: &mu, drops: &drops}, nil
	}
}

// doOnly wraps a well-configured *http.Client and exposes Do alone, as a
// RoundTripper wrapper or a library's client type does: the harness has
// nothing to call at teardown, so its idle pooled connections stay open.
type doOnly struct{ inner *http.Client }

func (d doOnly) Do(req *http.Request) (*http.Response, error) { return d.inner.Do(req) }

func doOnlyFactory(t testing.TB) harness.ClientFactory {
	return func(svc harness.Service) (harness.Client, error) {
		tr := harnesstest.StdTransport(svc, 16)
		tr.ForceAttemptHTTP2 = true // a custom TLS config turns HTTP/2 off unless asked for
		t.Cleanup(tr.CloseIdleConnections)
		return doOnly{inner: &http.Client{Timeout: 2 * time.Second, Transport: tr}}, nil
	}
}

// doOnlyBodyDropper is bodyDropper with Do alone: the servers cannot tell
// its dropped connections from an idle pool, but the client never notices
// them close, so their sockets and read loops outlive teardown.
type doOnlyBodyDropper struct{ d *bodyDropper }

func (b doOnlyBodyDropper) Do(req *http.Request) (*http.Response, error) { return b.d.Do(req) }

func doOnlyBodyDropperFactory(t testing.TB) harness.ClientFactory {
	f := bodyDropperFactory(t)
	return func(svc harness.Service) (harness.Client, error) {
		c, err := f(svc)
		if err != nil {
			return nil, err
		}
		return doOnlyBodyDropper{c.(*bodyDropper)}, nil
	}
}

// clientPerCall builds a new transport for every call and keeps no
// reference to it (the test does, to clean up): each call's connection
// stays idle in a pool nobody reaches again.
type clientPerCall struct {
	svc   harness.Service
	mu    *sync.Mutex
	built *[]*http.Transport
}

func (c clientPerCall) Do(req *http.Request) (*http.Response, error) {
	tr := harnesstest.StdTransport(c.svc, 4)
	c.mu.Lock()
	*c.built = append(*c.built, tr)
	c.mu.Unlock()
	return (&http.Client{Timeout: 2 * time.Second, Transport: tr}).Do(req)
}

func clientPerCallFactory(t testing.TB) harness.ClientFactory {
	var (
		mu    sync.Mutex
		built []*http.Transport
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, tr := range built {
			tr.CloseIdleConnections()
		}
	})
	return func(svc harness.Service) (harness.Client, error) {
		return clientPerCall{svc: svc, mu: &mu, built: &built}, nil
	}
}

// fdLeaker opens descriptors with every call and never closes them, as a
// client that opens a log or a socket per call and forgets it would; the
// test closes them at cleanup.
type fdLeaker struct {
	inner *http.Client
	mu    *sync.Mutex
	files *[]*os.File
}

func (l fdLeaker) Do(req *http.Request) (*http.Response, error) {
	for range 10 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		*l.files = append(*l.files, f)
		l.mu.Unlock()
	}
	return l.inner.Do(req)
}

func (l fdLeaker) CloseIdleConnections() { l.inner.CloseIdleConnections() }

func fdLeakerFactory(t testing.TB) harness.ClientFactory {
	var (
		mu    sync.Mutex
		files []*os.File
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range files {
			_ = f.Close()
		}
	})
	return func(svc harness.Service) (harness.Client, error) {
		return fdLeaker{inner: &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(svc, 16)}, mu: &mu, files: &files}, nil
	}
}

// blockingClient never returns from Do, whatever the context says.
type blockingClient struct{ park chan struct{} }

func (b *blockingClient) Do(*http.Request) (*http.Response, error) {
	<-b.park
	return nil, context.Canceled
}

func blockingFactory(t testing.TB) harness.ClientFactory {
	park := make(chan struct{})
	t.Cleanup(func() { close(park) })
	return func(harness.Service) (harness.Client, error) { return &blockingClient{park: park}, nil }
}

// slowClient waits before delegating, to saturate an open loop.
type slowClient struct {
	inner *http.Client
	delay time.Duration
}

func (s *slowClient) Do(req *http.Request) (*http.Response, error) {
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	return s.inner.Do(req)
}

func (s *slowClient) CloseIdleConnections() { s.inner.CloseIdleConnections() }

func findVerdict(t testing.TB, vs []harness.Verdict, id string) harness.Verdict {
	t.Helper()
	for _, v := range vs {
		if v.Check == id {
			return v
		}
	}
	require.Failf(t, "no verdict", "check %s not judged", id)
	return harness.Verdict{}
}
