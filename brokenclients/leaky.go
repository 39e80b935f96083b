package brokenclients

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
)

// clientPerRequest builds a whole new reference client for every call, as
// code does that calls a newClient() helper inside its request function. It
// keeps no reference to them, so it has nothing to close: their idle
// connections stay open until the server or the idle timeout closes them.
type clientPerRequest struct {
	cfg pooledclient.Config
}

func newClientPerRequest(svc harness.Service) (harness.Client, error) {
	cfg, err := ReferenceConfig(svc)
	if err != nil {
		return nil, err
	}
	return &clientPerRequest{cfg: cfg}, nil
}

func (c *clientPerRequest) Do(req *http.Request) (*http.Response, error) {
	cl, err := pooledclient.NewClient(c.cfg)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return cl.Do(req)
}

// bodyNotReadToEOF hands back bodies that end halfway: the first half of the
// body, then io.EOF, with the rest closed unread, as code does that trusts a
// single Read or a fixed-size buffer to hold the whole body.
type bodyNotReadToEOF struct {
	*pooledclient.Client
}

func newBodyNotReadToEOF(svc harness.Service) (harness.Client, error) {
	cl, err := configured(svc, nil)
	if err != nil {
		return nil, err
	}
	return bodyNotReadToEOF{cl}, nil
}

// unknownLengthRead is how much of a body of unknown length is read.
const unknownLengthRead = 4 << 10

func (c bodyNotReadToEOF) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.Client.Do(req)
	if err != nil {
		return resp, err
	}
	left := int64(unknownLengthRead)
	if resp.ContentLength >= 0 {
		left = resp.ContentLength / 2
	}
	resp.Body = &shortBody{rc: resp.Body, left: left}
	return resp, nil
}

type shortBody struct {
	rc   io.ReadCloser
	left int64
	once sync.Once
}

func (b *shortBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		_ = b.Close()
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *shortBody) Close() error {
	var err error
	b.once.Do(func() { err = b.rc.Close() })
	return err
}

// goroutinePerCall reports each call's latency from a goroutine of its own
// to a channel whose reader was never started, so every call leaves one
// goroutine blocked. Close and CloseIdleConnections do not help.
//
// In production such a goroutine lives forever; here each gives up after
// leakLifetime, long past any teardown the harness measures, so that
// watching poolproof catch the bug (the CLI, the gallery tests) does not
// leave thousands of goroutines slowing every later run in the process.
type goroutinePerCall struct {
	*pooledclient.Client
	latencies chan time.Duration // never read: the bug
	release   chan struct{}      // closed only by this package's tests, to clean up
}

func newGoroutinePerCall(svc harness.Service) (harness.Client, error) {
	cl, err := configured(svc, nil)
	if err != nil {
		return nil, err
	}
	return &goroutinePerCall{Client: cl, latencies: make(chan time.Duration), release: make(chan struct{})}, nil
}

func (c *goroutinePerCall) Do(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := c.Client.Do(req)
	go c.report(time.Since(start))
	return resp, err
}

func (c *goroutinePerCall) report(d time.Duration) {
	t := time.NewTimer(leakLifetime)
	defer t.Stop()
	select {
	case c.latencies <- d:
	case <-c.release:
	case <-t.C:
	}
}

// leakLifetime bounds each goroutine goroutinePerCall leaks: ten times the
// longest wait of the harness's teardown and leak measurement.
const leakLifetime = 30 * time.Second
