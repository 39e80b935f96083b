package fakeservers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// AdminClient drives a fake service through its admin API over HTTP. It is
// how the harness reaches a fake service, whether it runs in this process, in
// a container or on another host.
type AdminClient struct {
	base string
	http *http.Client
}

// NewAdminClient returns a client for the admin API at base
// ("http://127.0.0.1:9001"). Every call is also bounded by its context.
func NewAdminClient(base string) *AdminClient {
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	return &AdminClient{
		base: strings.TrimRight(base, "/"),
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 5 * time.Second}},
	}
}

// URL is the admin base URL.
func (c *AdminClient) URL() string { return c.base }

// Stats reads the server-side truth.
func (c *AdminClient) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.call(ctx, http.MethodGet, AdminStatsPath, nil, &s)
	return s, err
}

// Conns reads the live connection counters alone; cheap enough to poll.
func (c *AdminClient) Conns(ctx context.Context) (ConnCounts, error) {
	var n ConnCounts
	err := c.call(ctx, http.MethodGet, AdminConnsPath, nil, &n)
	return n, err
}

// Reset forgets recorded history and zeroes the peaks.
func (c *AdminClient) Reset(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, AdminResetPath, nil, nil)
}

// SetHTTP2 makes the service offer h2 to new connections (on) or HTTP/1.1
// only (off).
func (c *AdminClient) SetHTTP2(ctx context.Context, on bool) error {
	return c.call(ctx, http.MethodPost, AdminProtocolPath, Protocol{HTTP2: on}, nil)
}

// ResetSeed is Reset with the fault and jitter draws reseeded with seed.
func (c *AdminClient) ResetSeed(ctx context.Context, seed int64) error {
	return c.call(ctx, http.MethodPost, AdminResetPath, map[string]int64{"seed": seed}, nil)
}

// CloseIdle has the service close every connection with no request in
// flight and says which it closed and which it left open.
func (c *AdminClient) CloseIdle(ctx context.Context) (IdleClose, error) {
	var out IdleClose
	err := c.call(ctx, http.MethodPost, AdminCloseIdlePath, nil, &out)
	return out, err
}

// SetFaults replaces every fault with faults.
func (c *AdminClient) SetFaults(ctx context.Context, faults ...Fault) error {
	if faults == nil {
		faults = []Fault{}
	}
	return c.call(ctx, http.MethodPost, AdminFaultsPath, faults, nil)
}

// Faults lists the faults in force.
func (c *AdminClient) Faults(ctx context.Context) ([]Fault, error) {
	var f []Fault
	err := c.call(ctx, http.MethodGet, AdminFaultsPath, nil, &f)
	return f, err
}

// ClearFaults removes every fault.
func (c *AdminClient) ClearFaults(ctx context.Context) error {
	return c.call(ctx, http.MethodDelete, AdminFaultsPath, nil, nil)
}

// SetKeepAlive changes the server's connection policy for new and idle connections.
func (c *AdminClient) SetKeepAlive(ctx context.Context, ka KeepAlive) error {
	return c.call(ctx, http.MethodPost, AdminKeepAlivePath, ka, nil)
}

// KeepAlive reads the server's connection policy.
func (c *AdminClient) KeepAlive(ctx context.Context) (KeepAlive, error) {
	var ka KeepAlive
	err := c.call(ctx, http.MethodGet, AdminKeepAlivePath, nil, &ka)
	return ka, err
}

// CAPEM returns the PEM of the CA that signed the service's certificate.
func (c *AdminClient) CAPEM(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+AdminCAPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fake service admin %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fake service admin %s: reading CA: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fake service admin %s%s: %s: %s", c.base, AdminCAPath, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// Health returns nil when the admin API answers.
func (c *AdminClient) Health(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, AdminHealthPath, nil, nil)
}

// Close releases the client's idle connections.
func (c *AdminClient) Close() { c.http.CloseIdleConnections() }

func (c *AdminClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("fake service admin %s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("fake service admin %s %s: %s: %s", method, c.base+path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("fake service admin %s %s: decoding: %w", method, c.base+path, err)
	}
	return nil
}
