package brokenclients

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// The plain gallery clients are what most Go libraries build: an
// *http.Client on an http.Transport that takes HTTP/2 whenever a service
// offers it. Over HTTP/2 their bugs cost a stream, not a connection, and
// pass unseen; certification judges HTTP/1.1, where they show.

// PlainContract is what the plain clients declare: 16 connections, a 2s
// request timeout, no retries, no breaker, no pool wait, idle connections
// closed after 90s (no connection lifetime: net/http has none).
var PlainContract = harness.Contract{
	MaxConns:       plainMaxConns,
	RequestTimeout: refRequestTimeout,
	MaxAttempts:    1,
	RecoveryTime:   3 * time.Second,
	IdleTimeout:    plainIdleTimeout,
	ConnectTimeout: 2 * time.Second, // PlainTransport's 1s dial + 1s TLS handshake
}

// PlainProfile holds every service to PlainContract.
func PlainProfile() harness.Profile { return harness.Profile{Default: PlainContract} }

const (
	plainMaxConns    = 16
	plainIdleTimeout = 90 * time.Second // net/http's DefaultTransport's
)

// PlainTransport is the control the plain gallery clients each break in
// one way: a bounded pool that keeps as many idle connections as it may
// open, timeouts within PlainContract, TLS trusting only the service's CA,
// HTTP/2 where offered.
func PlainTransport(svc harness.Service) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   time.Second,
		ResponseHeaderTimeout: refRequestTimeout,
		MaxConnsPerHost:       plainMaxConns,
		MaxIdleConnsPerHost:   plainMaxConns,
		IdleConnTimeout:       plainIdleTimeout,
		ForceAttemptHTTP2:     true,
	}
}

// plainClient is PlainTransport after edit, behind an http.Client with the
// contract's request timeout.
func plainClient(svc harness.Service, edit func(*http.Transport)) (*http.Client, error) {
	if svc.Name == "" || svc.BaseURL == "" {
		return nil, fmt.Errorf("brokenclients: service %q at %q: a plain client needs the service's name and base URL", svc.Name, svc.BaseURL)
	}
	t := PlainTransport(svc)
	if edit != nil {
		edit(t)
	}
	return &http.Client{Transport: t, Timeout: refRequestTimeout}, nil
}

func newSmallIdlePool(svc harness.Service) (harness.Client, error) {
	return plainClient(svc, func(t *http.Transport) { t.MaxIdleConnsPerHost = 2 })
}

func newNoConnectionLimit(svc harness.Service) (harness.Client, error) {
	return plainClient(svc, func(t *http.Transport) { t.MaxConnsPerHost = 0 })
}

// cancelBeforeBody gives each call a context of its own and cancels it as
// soon as Do returns, before the caller read the body: the classic
// `defer cancel()` in a helper that returns the response. Over HTTP/1.1
// the transport must then close the connection mid-body, so every call
// dials a new one; over HTTP/2 it only resets the stream.
type cancelBeforeBody struct{ *http.Client }

func (c cancelBeforeBody) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := c.Client.Do(req.WithContext(ctx))
	cancel()
	if err == nil {
		// What the caller then reads is whatever was buffered before the
		// cancel, then an error.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{resp.Body, resp.Body}
	}
	return resp, err
}

func newCancelBeforeBody(svc harness.Service) (harness.Client, error) {
	c, err := plainClient(svc, nil)
	if err != nil {
		return nil, err
	}
	return cancelBeforeBody{c}, nil
}
