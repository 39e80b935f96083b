// Command go-driver is poolproof's Go driver: a plain *http.Client per
// service behind the driver protocol (docs/driver-protocol.md), with
// nothing of poolproof but the protocol. It measures what the protocol
// costs: certified through it, the same client should earn the verdicts
// it earns in process, at most at half its calls per second.
//
// It configures each service's client from the contract it is sent, so it
// keeps whatever it is held to: a pool of max_conns connections, a call
// that waits pool_wait for one fails as pool_exhausted, request_timeout
// bounds a call and its body, and no retries (max_attempts 1 is honest)
// and no breaker (breaker_open_delay 0). drivers/go/contract.json is that
// contract.
//
//	go build -o go-driver ./drivers/go
//	poolproof certify -driver ./go-driver -contract drivers/go/contract.json
//
// (Not "go run": its leaks are measured from the process poolproof starts,
// which would be the go command.)
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

func main() {
	os.Exit(serve(os.Stdin, os.Stdout))
}

// contract is the part of the contract this driver keeps (durations in
// nanoseconds, as init sends them).
type contract struct {
	MaxConns       int           `json:"max_conns"`
	PoolWait       time.Duration `json:"pool_wait"`
	RequestTimeout time.Duration `json:"request_timeout"`
}

type message struct {
	Type string `json:"type"`

	// init
	Services []struct {
		Name    string `json:"name"`
		BaseURL string `json:"base_url"`
		CAFile  string `json:"ca_file"`
	} `json:"services"`
	Contract struct {
		Services map[string]contract `json:"services"`
	} `json:"contract"`

	// call
	ID      int64       `json:"id"`
	Service string      `json:"service"`
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers http.Header `json:"headers"`
	Body    []byte      `json:"body"`
}

type result struct {
	Type       string      `json:"type"`
	ID         int64       `json:"id"`
	Status     int         `json:"status,omitempty"`
	Headers    http.Header `json:"headers,omitempty"`
	BodyLen    int64       `json:"body_len"`
	BodySHA256 string      `json:"body_sha256,omitempty"`
	Error      *callError  `json:"error,omitempty"`
}

type callError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// serve speaks the protocol until shutdown or EOF; it returns the exit
// status.
func serve(in io.Reader, out io.Writer) int {
	w := newWriter(out)
	clients := map[string]*client{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			fmt.Fprintf(os.Stderr, "go-driver: a line that is not a message: %v\n", err)
			return 2
		}
		switch m.Type {
		case "init":
			for _, s := range m.Services {
				c, err := newClient(s.CAFile, m.Contract.Services[s.Name])
				if err != nil {
					fmt.Fprintf(os.Stderr, "go-driver: service %s: %v\n", s.Name, err)
					return 2
				}
				clients[s.Name] = c
			}
			version := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				version = bi.GoVersion
			}
			w.send(map[string]string{"type": "init_ok", "driver": "go-net-http", "library": "net/http", "version": version})
		case "call":
			c := clients[m.Service]
			go func() { w.send(call(c, m)) }()
		case "close":
			for _, c := range clients {
				c.http.CloseIdleConnections()
			}
			w.send(map[string]string{"type": "close_ok"})
		case "shutdown":
			return 0 // calls in flight are abandoned, as shutdown asks
		}
	}
	return 0 // EOF: as shutdown
}

// client is one service's *http.Client with a bounded wait for its pool.
type client struct {
	http     *http.Client
	slots    chan struct{}
	poolWait time.Duration
}

// newClient builds the client a careful Go team writes for one service
// held to c: at most MaxConns connections, idle ones kept, TLS trusting
// only the service's CA, HTTP/1.1.
func newClient(caFile string, c contract) (*client, error) {
	if c.MaxConns <= 0 || c.RequestTimeout <= 0 {
		return nil, fmt.Errorf("the contract sets no max_conns or request_timeout: %+v", c)
	}
	t := &http.Transport{
		Proxy:               nil, // the services are on loopback
		MaxConnsPerHost:     c.MaxConns,
		MaxIdleConnsPerHost: c.MaxConns,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: c.RequestTimeout,
		DialContext:         (&net.Dialer{Timeout: c.RequestTimeout}).DialContext,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &client{
		http:     &http.Client{Transport: t, Timeout: c.RequestTimeout},
		slots:    make(chan struct{}, c.MaxConns),
		poolWait: c.PoolWait,
	}, nil
}

var errPoolExhausted = errors.New("pool exhausted: no connection free within the pool wait")

// do makes one call and reads its body to the end, hashing it: a call
// holds a slot of the pool from before it is sent until its body is read.
func (c *client) do(req *http.Request) (status int, header http.Header, n int64, sum [sha256.Size]byte, err error) {
	t := time.NewTimer(c.poolWait)
	select {
	case c.slots <- struct{}{}:
		t.Stop()
	case <-t.C:
		return 0, nil, 0, sum, errPoolExhausted
	}
	defer func() { <-c.slots }()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, 0, sum, err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if n, err = io.Copy(h, resp.Body); err != nil {
		return 0, nil, n, sum, err
	}
	h.Sum(sum[:0])
	return resp.StatusCode, resp.Header, n, sum, nil
}

func call(c *client, m message) result {
	r := result{Type: "result", ID: m.ID}
	if c == nil {
		r.Error = &callError{Class: "other", Message: "no client for service " + m.Service}
		return r
	}
	req, err := http.NewRequestWithContext(context.Background(), m.Method, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		r.Error = &callError{Class: "other", Message: err.Error()}
		return r
	}
	req.Header = m.Headers
	if req.Header == nil {
		req.Header = http.Header{}
	}
	status, header, n, sum, err := c.do(req)
	if err != nil {
		r.Error = &callError{Class: classify(err), Message: err.Error()}
		return r
	}
	r.Status, r.Headers, r.BodyLen, r.BodySHA256 = status, header, n, hex.EncodeToString(sum[:])
	return r
}

// classify names the protocol's class of a net/http error.
func classify(err error) string {
	var (
		ne  net.Error
		cv  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
		al  tls.AlertError
		ua  x509.UnknownAuthorityError
		hos x509.HostnameError
	)
	switch {
	case errors.Is(err, errPoolExhausted):
		return "pool_exhausted"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connect"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return "reset"
	case errors.As(err, &cv), errors.As(err, &rh), errors.As(err, &al), errors.As(err, &ua), errors.As(err, &hos):
		return "tls"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

// writer prints messages, whole lines only, from any goroutine: the
// goroutine that finished a call writes its result itself, one write a
// line, under a lock.
type writer struct {
	mu  sync.Mutex
	out io.Writer
}

func newWriter(out io.Writer) *writer { return &writer{out: out} }

func (w *writer) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-driver: %v\n", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.out.Write(append(b, '\n')); err != nil {
		os.Exit(0) // poolproof is gone: nobody to answer
	}
}
