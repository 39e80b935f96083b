package brokenclients

import (
	"context"
	"fmt"
	"net/http"

	"github.com/poolproof/poolproof/harness"
)

// detachedRequests runs each request on a context detached from the
// caller's (so that "a cancelled caller does not abort a half-done
// write", as the comment in such code goes) and returns as soon as the
// caller gives up: the caller is answered on time, the request runs on
// to its own timeout. Its transport has no connection limit, so every
// call given up leaves a connection and its goroutines working.
type detachedRequests struct{ *http.Client }

func (c detachedRequests) Do(req *http.Request) (*http.Response, error) {
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result)
	gone := make(chan struct{})
	go func() {
		resp, err := c.Client.Do(req.WithContext(context.WithoutCancel(req.Context())))
		select {
		case done <- result{resp, err}:
		case <-gone:
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-req.Context().Done():
		close(gone)
		return nil, fmt.Errorf("brokenclients: %s %s: %w", req.Method, req.URL, context.Cause(req.Context()))
	}
}

func newDetachedRequests(svc harness.Service) (harness.Client, error) {
	c, err := plainClient(svc, func(t *http.Transport) { t.MaxConnsPerHost = 0 })
	if err != nil {
		return nil, err
	}
	return detachedRequests{c}, nil
}
