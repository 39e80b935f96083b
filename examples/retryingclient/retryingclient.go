// Package retryingclient is a correct retrying HTTP client built on
// net/http alone, as a team might write one, and the contract it can
// honestly declare. poolproof certifies it beside the reference client: it
// retries only what is safe to retry (reads, and writes that carry an
// Idempotency-Key), waits a capped, fully jittered exponential backoff,
// honours Retry-After up to its cap, stops at its attempt budget and at the
// call's deadline, and drains every response it retries so its connection
// goes back to the pool.
package retryingclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// The client's settings; Contract states what they promise.
const (
	maxConns       = 16
	maxAttempts    = 3
	attemptTimeout = 2 * time.Second
	callTimeout    = 4 * time.Second
	baseBackoff    = 50 * time.Millisecond
	maxBackoff     = 500 * time.Millisecond
	maxRetryAfter  = 2 * time.Second
	drainLimit     = 64 << 10
)

// Contract is what the client declares: at most 16 connections (and calls
// in flight: one call per connection, HTTP/2 included), a call ends within
// 4s retries included, at most 3 attempts, no breaker.
var Contract = harness.Contract{
	MaxConns:       maxConns,
	MaxInFlight:    maxConns,
	RequestTimeout: callTimeout,
	MaxAttempts:    maxAttempts,
	BackoffBase:    baseBackoff,
	BackoffCap:     maxBackoff,
	BackoffJitter:  1, // full jitter: uniform in [0, ceiling)
	MaxRetryAfter:  maxRetryAfter,
	RecoveryTime:   callTimeout + time.Second,
	ConnectTimeout: 2 * time.Second, // New's 1s dial + 1s TLS handshake, per attempt
}

// Profile holds every service to Contract; the client speaks HTTP/2 where
// offered.
func Profile() harness.Profile { return harness.Profile{Default: Contract, HTTP2: true} }

// Client retries a call up to maxAttempts times. It exposes only Do, as
// most library clients do: the harness cannot ask it to drop its idle
// connections.
type Client struct {
	http  *http.Client
	slots chan struct{} // bounds calls in flight, which HTTP/2 would not
	mu    sync.Mutex
	rng   *rand.Rand
}

// New builds the client of one service, trusting only its CA.
func New(svc harness.Service) (*Client, error) {
	t := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: svc.CAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   time.Second,
		ResponseHeaderTimeout: attemptTimeout,
		MaxConnsPerHost:       maxConns,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Client{
		http:  &http.Client{Transport: t},
		slots: make(chan struct{}, maxConns),
		rng:   rand.New(rand.NewPCG(1, 2)),
	}, nil
}

// Factory is a harness.ClientFactory for New.
func Factory(svc harness.Service) (harness.Client, error) { return New(svc) }

// Do sends req, retrying what is safe to retry. The response body it
// returns holds the call's slot until it is closed.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), callTimeout)
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	release := func() { <-c.slots; cancel() }
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			release()
			return nil, err
		}
		body = b
	}
	safe := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Header.Get("Idempotency-Key") != ""
	for attempt := 1; ; attempt++ {
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		resp, err := c.http.Do(r.WithContext(actx))
		retry := safe && attempt < maxAttempts && retryable(resp, err)
		if !retry {
			if err != nil {
				acancel()
				release()
				return nil, err
			}
			resp.Body = &slotBody{ReadCloser: resp.Body, done: func() { acancel(); release() }}
			return resp, nil
		}
		wait := c.backoff(attempt)
		if resp != nil {
			if ra := retryAfter(resp); ra > 0 {
				if ra > maxRetryAfter {
					// Longer than the client will wait: hand the answer back.
					resp.Body = &slotBody{ReadCloser: resp.Body, done: func() { acancel(); release() }}
					return resp, nil
				}
				wait = ra
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
			resp.Body.Close()
		}
		acancel()
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			release()
			return nil, ctx.Err()
		}
	}
}

// backoff is a fully jittered exponential delay before attempt+1.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := min(maxBackoff, baseBackoff<<(attempt-1))
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(c.rng.Int64N(int64(ceiling))) + time.Millisecond
}

func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter reads a Retry-After in seconds (0 when absent or a date).
func retryAfter(resp *http.Response) time.Duration {
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// slotBody gives the call's slot back once the caller closed the body.
type slotBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}
