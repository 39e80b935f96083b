package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/poolproof/poolproof/internal/bounded"
)

// Adapters for the common shapes of a client that has no Do of its own,
// so a team certifies its library as it is instead of hand-writing a Do
// (and the teardown the checks need) for it.

// RoundTripperClient makes a Client of rt, for a library that hands out an
// http.RoundTripper: Do is one RoundTrip, so no redirect is followed and no
// cookie kept (the fake services need neither). When rt has
// CloseIdleConnections or Close, the client has them too and teardown calls
// them as for any client; when it has neither, teardown calls nothing.
func RoundTripperClient(rt http.RoundTripper) Client {
	if rt == nil {
		return refuse(errors.New("harness.RoundTripperClient: the RoundTripper is nil: pass the transport your library builds"))
	}
	return adapt(rt.RoundTrip, rt)
}

// CallFunc is a client as a function of a request's parts, for a library
// that takes a method, a URL, headers and a body and hands back the status,
// the headers and the whole body instead of an *http.Response. Convert the
// function, harness.CallFunc(fn), to have a Client.
//
// The harness reads the returned body and checks it against the response's
// X-Body-Digest header as for any client, so respHeader must be the headers
// the server sent, with the canonical keys net/http gives them. header is
// the function's own copy. ctx is the call's, which the harness never
// cancels when a call completes: the function (or the library) must bound
// the call itself, as the contract's RequestTimeout says. A CallFunc has no
// teardown; a library that pools connections gives it one with
// AttachTeardown, or its idle connections are charged as leaks.
type CallFunc func(ctx context.Context, method, url string, header http.Header, body []byte) (status int, respHeader http.Header, respBody []byte, err error)

// Do reads the request's body, calls f and turns its answer into a
// response whose body is respBody. f's error is returned as it is, so the
// harness classifies it (and a Classifier in it) as any client's.
func (f CallFunc) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("harness.CallFunc: reading the request body: %w", err)
		}
		body = b
	}
	status, header, respBody, err := f(req.Context(), req.Method, req.URL.String(), req.Header.Clone(), body)
	if err != nil {
		return nil, err
	}
	if status < 100 || status > 999 {
		return nil, fmt.Errorf("harness.CallFunc: the function returned status %d and no error: return the response's status code, or an error when there is no response", status)
	}
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(respBody)),
		ContentLength: int64(len(respBody)),
		Request:       req,
	}, nil
}

// AttachTeardown gives c the teardown calls it lacks, for a client whose
// pool it cannot close itself (a CallFunc, a library with a process-wide
// pool): at teardown the harness calls closeIdle as CloseIdleConnections,
// then close as Close, each bounded as for any client. A nil closeIdle or
// close keeps c's own method, if it has one.
func AttachTeardown(c Client, closeIdle func(), close func() error) Client {
	if c == nil {
		return refuse(errors.New("harness.AttachTeardown: the client is nil: pass the client to tear down"))
	}
	a := adapt(c.Do, c)
	if closeIdle != nil {
		a.closeIdle = closeIdle
	}
	if close != nil {
		a.close = close
	}
	return a
}

// adapted is the Client the adapters return. It has both teardown
// methods whatever it adapts, so teardown asks it which are real
// (teardownOf) and records only calls that reach something.
type adapted struct {
	do        func(*http.Request) (*http.Response, error)
	closeIdle func()
	close     func() error
}

// adapt makes a Client of do with the teardown methods src has.
func adapt(do func(*http.Request) (*http.Response, error), src any) *adapted {
	a := &adapted{do: do}
	ic, cl := teardownOf(src)
	if ic != nil {
		a.closeIdle = ic.CloseIdleConnections
	}
	if cl != nil {
		a.close = cl.Close
	}
	return a
}

// refuse is a Client whose every call fails with err: an adapter built
// from nothing says so on the first call instead of panicking in it.
func refuse(err error) *adapted {
	return &adapted{do: func(*http.Request) (*http.Response, error) { return nil, err }}
}

func (a *adapted) Do(req *http.Request) (*http.Response, error) { return a.do(req) }

func (a *adapted) CloseIdleConnections() {
	if a.closeIdle != nil {
		a.closeIdle()
	}
}

func (a *adapted) Close() error {
	if a.close != nil {
		return a.close()
	}
	return nil
}

// WithClientReset calls reset before each scenario's run, after the
// environment's reset, for a client whose state outlives the clients the
// factory builds (a library's process-wide pool, breaker or cache): without
// it one scenario's connections and breaker state carry into the next. Each
// call is bounded by the reset timeout (WithResetTimeout); an error, or a
// reset that does not return in time, fails that scenario with a CheckRun
// verdict naming the hook, and the certification goes on.
func WithClientReset(reset func(ctx context.Context) error) CertifyOption {
	return func(c *certifyConfig) { c.clientReset = reset }
}

// resetClient runs the WithClientReset hook, if any, bounded by timeout.
func resetClient(ctx context.Context, reset func(context.Context) error, timeout time.Duration) error {
	if reset == nil {
		return nil
	}
	err, abandoned := bounded.Call(ctx, timeout, 0, reset)
	switch {
	case abandoned && ctx.Err() != nil:
		return fmt.Errorf("the client reset hook (WithClientReset) was interrupted: %w", ctx.Err())
	case abandoned:
		return fmt.Errorf("the client reset hook (WithClientReset) did not return within %v: make it return when its context ends, or raise WithResetTimeout", timeout)
	case err != nil:
		return fmt.Errorf("the client reset hook (WithClientReset) failed: %w; fix the hook or the state it resets, then certify again", err)
	}
	return nil
}
