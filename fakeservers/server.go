package fakeservers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidConfig is wrapped by every error that rejects a Config or a
// KeepAlive; the message names the field.
var ErrInvalidConfig = errors.New("invalid config")

// Config describes one fake service.
type Config struct {
	Service      string // Payment, Inventory or Notification
	Listen       string // service address; default "127.0.0.1:0"
	AdminListen  string // admin address, a separate listener; default "127.0.0.1:0"
	TLS          bool   // serve HTTPS (HTTP/2 and HTTP/1.1 through ALPN)
	H2C          bool   // plain-text HTTP/2 with prior knowledge, next to HTTP/1.1; not with TLS
	DisableHTTP2 bool   // with TLS: offer HTTP/1.1 only
	Latency      time.Duration
	Jitter       time.Duration // each request waits Latency plus a seeded uniform draw in [0, Jitter)
	Seed         int64         // seeds fault draws and jitter, so a run is replayable
	KeepAlive    KeepAlive
	CA           *CA // signs the leaf; generated when nil (and TLS is on)
}

func (c *Config) validate() error {
	if !slices.Contains(Services, c.Service) {
		return fmt.Errorf("%w: Service: %q is not one of %s", ErrInvalidConfig, c.Service, strings.Join(Services, ", "))
	}
	switch {
	case c.Latency < 0:
		return fmt.Errorf("%w: Latency: must not be negative, got %s", ErrInvalidConfig, c.Latency)
	case c.Jitter < 0:
		return fmt.Errorf("%w: Jitter: must not be negative, got %s", ErrInvalidConfig, c.Jitter)
	case c.TLS && c.H2C:
		return fmt.Errorf("%w: H2C: h2c is plain-text HTTP/2; turn TLS off or H2C off", ErrInvalidConfig)
	case c.H2C && c.DisableHTTP2:
		return fmt.Errorf("%w: DisableHTTP2: contradicts H2C; choose one", ErrInvalidConfig)
	}
	if err := validateKeepAlive(c.KeepAlive); err != nil {
		return fmt.Errorf("%w: KeepAlive.%w", ErrInvalidConfig, err)
	}
	return nil
}

func validateKeepAlive(ka KeepAlive) error {
	switch {
	case ka.IdleTimeout < 0:
		return fmt.Errorf("idle_timeout: must not be negative, got %s", ka.IdleTimeout.Std())
	case ka.ReadHeaderTimeout < 0:
		return fmt.Errorf("read_header_timeout: must not be negative, got %s", ka.ReadHeaderTimeout.Std())
	case ka.MaxRequestsPerConn < 0:
		return fmt.Errorf("max_requests_per_conn: must not be negative, got %d", ka.MaxRequestsPerConn)
	}
	return nil
}

// Server is one running fake service: a service listener and an admin
// listener, with the server-side truth of everything that reached them.
type Server struct {
	cfg    Config
	routes []route
	ca     *CA
	url    string
	admURL string

	svc, adm   *http.Server
	svcL, admL net.Listener
	baseCtx    context.Context
	cancelBase context.CancelFunc
	serveDone  chan struct{} // closed when both Serve calls returned

	policy   atomic.Pointer[KeepAlive]
	faults   atomic.Pointer[faultSet]
	dice     *faultDice
	offerH2  atomic.Bool // ALPN offers h2 to new connections
	jitterMu sync.Mutex
	jitter   *rand.Rand

	conns connTracker
	log   *requestLog

	payment       paymentState
	items         itemCache
	reservations  atomic.Int64
	notifications atomic.Int64
	catalogs      catalogCache

	closeOnce sync.Once
	closeErr  error
}

const jitterStream = 0x6a6974746572 // "jitter"

// Start validates cfg, binds both listeners and serves. On return the
// server accepts connections. ctx bounds only the start-up; the server runs
// until Close.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.AdminListen == "" {
		cfg.AdminListen = "127.0.0.1:0"
	}
	s := &Server{
		cfg:       cfg,
		routes:    routesFor(cfg.Service),
		ca:        cfg.CA,
		dice:      newFaultDice(cfg.Seed),
		jitter:    rand.New(rand.NewPCG(uint64(cfg.Seed), jitterStream)),
		log:       newRequestLog(),
		serveDone: make(chan struct{}),
	}
	s.payment.reset()
	s.catalogs.bySize = make(map[int]*response)
	ka := cfg.KeepAlive
	s.policy.Store(&ka)
	s.faults.Store(newFaultSet(nil))
	s.conns.policy = &s.policy
	s.conns.tls = cfg.TLS

	var tlsCfg *tls.Config
	if cfg.TLS {
		if s.ca == nil {
			ca, err := NewCA()
			if err != nil {
				return nil, err
			}
			s.ca = ca
		}
		leaf, err := s.ca.Issue(leafHosts()...)
		if err != nil {
			return nil, err
		}
		// Session tickets stay enabled (the default) so resumption can be observed.
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
		// Whether ALPN offers h2 is switched at run time (SetHTTP2): new
		// connections then negotiate HTTP/1.1 only, through a config that
		// leaves h2 out; open connections keep what they negotiated.
		h1Only := tlsCfg.Clone()
		h1Only.NextProtos = []string{"http/1.1"}
		tlsCfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if s.offerH2.Load() {
				return nil, nil
			}
			return h1Only, nil
		}
	}
	s.offerH2.Store(cfg.TLS && !cfg.DisableHTTP2)

	var lc net.ListenConfig
	svcL, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("fakeservers: %s: Listen %q: %w", cfg.Service, cfg.Listen, err)
	}
	admL, err := lc.Listen(ctx, "tcp", cfg.AdminListen)
	if err != nil {
		_ = svcL.Close()
		return nil, fmt.Errorf("fakeservers: %s: AdminListen %q: %w", cfg.Service, cfg.AdminListen, err)
	}
	if err := ctx.Err(); err != nil {
		_ = svcL.Close()
		_ = admL.Close()
		return nil, fmt.Errorf("fakeservers: %s: start: %w", cfg.Service, err)
	}
	s.svcL = &trackingListener{Listener: svcL, tracker: &s.conns}
	s.admL = admL

	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(cfg.TLS && !cfg.DisableHTTP2)
	protos.SetUnencryptedHTTP2(cfg.H2C)
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	quiet := log.New(discardWriter{}, "", 0) // aborted responses are the point here, not news
	s.svc = &http.Server{
		Handler:           s,
		TLSConfig:         tlsCfg,
		Protocols:         &protos,
		ReadHeaderTimeout: readHeaderSentinel,
		IdleTimeout:       idleSentinel,
		ConnState:         s.conns.connState,
		ConnContext:       connContext,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:          quiet,
	}
	s.adm = &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          quiet,
	}

	scheme := "http"
	if cfg.TLS {
		scheme = "https"
	}
	s.url = scheme + "://" + svcL.Addr().String()
	s.admURL = "http://" + admL.Addr().String()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if cfg.TLS {
			_ = s.svc.ServeTLS(s.svcL, "", "")
		} else {
			_ = s.svc.Serve(s.svcL)
		}
	}()
	go func() {
		defer wg.Done()
		_ = s.adm.Serve(s.admL)
	}()
	go s.markServed(&wg)
	return s, nil
}

// markServed closes serveDone once both serve loops returned. It is a named
// method, not a closure, so that harnesses can tell this goroutine apart
// from a client's by a name that does not shift with Start's closures.
func (s *Server) markServed(wg *sync.WaitGroup) {
	wg.Wait()
	close(s.serveDone)
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// URL is the service's base URL, "https://127.0.0.1:port" or "http://...".
func (s *Server) URL() string { return s.url }

// Addr is host:port of the service listener.
func (s *Server) Addr() string { return s.svcL.Addr().String() }

// AdminURL is the admin API's base URL, always plain HTTP.
func (s *Server) AdminURL() string { return s.admURL }

// Service is the service's name.
func (s *Server) Service() string { return s.cfg.Service }

// CA signed the service's certificate; nil when TLS is off and no CA was given.
func (s *Server) CA() *CA { return s.ca }

// Stats reads the server-side truth.
func (s *Server) Stats() Stats {
	st := Stats{Service: s.cfg.Service, Now: time.Now()}
	s.conns.snapshot(&st)
	st.Requests = s.log.snapshot(s.routes)
	st.Charges = s.payment.chargesPerOrder()
	return st
}

// ConnCounts reads the live connection counters alone, without copying the
// history.
func (s *Server) ConnCounts() ConnCounts { return s.conns.counts() }

// CloseIdle closes every service connection with no request in flight
// (HTTP/1.x between requests, HTTP/2 with no open stream), as an idle
// timeout would, and leaves those serving a request open. A harness calls
// it at teardown: a client's idle pooled connections then close, and what
// the client still holds stays open for the leak checks to see.
func (s *Server) CloseIdle() IdleClose { return s.conns.closeIdle() }

// Reset forgets recorded history (closed connections, requests, attempt
// numbering, charges and idempotency keys), sets the peaks to the current
// values and reseeds the fault and jitter draws, so a scenario after a reset
// replays identically. Faults and keep-alive policy stay.
func (s *Server) Reset() { s.ResetSeed(s.cfg.Seed) }

// ResetSeed is Reset with the fault and jitter draws started again from
// seed instead of Config.Seed: a harness reseeds every run with the run's
// own seed, so a run replays whatever ran before it and whoever started
// the server.
func (s *Server) ResetSeed(seed int64) {
	s.conns.reset()
	s.log.reset()
	s.payment.reset()
	s.dice.reseed(seed)
	s.jitterMu.Lock()
	s.jitter = rand.New(rand.NewPCG(uint64(seed), jitterStream))
	s.jitterMu.Unlock()
}

// ErrHTTP2Unavailable is returned by SetHTTP2(true) when the server was
// started without TLS or with DisableHTTP2: it cannot offer h2.
var ErrHTTP2Unavailable = fmt.Errorf("%w: http2: this server cannot offer HTTP/2 (it needs TLS and DisableHTTP2 false)", ErrInvalidConfig)

// SetHTTP2 makes ALPN offer h2 to new connections (on) or HTTP/1.1 only
// (off). A client that takes h2 multiplexes its calls over few
// connections, which hides HTTP/1.1 pooling bugs, so a certification judges
// HTTP/1.1 unless the client declares HTTP/2.
func (s *Server) SetHTTP2(on bool) error {
	if on && (!s.cfg.TLS || s.cfg.DisableHTTP2) {
		return ErrHTTP2Unavailable
	}
	s.offerH2.Store(on)
	return nil
}

// HTTP2 reports whether ALPN offers h2 to new connections.
func (s *Server) HTTP2() bool { return s.offerH2.Load() }

// SetFaults replaces every fault. Either all are valid and all take effect
// at once, or none does and the error names the first bad field.
func (s *Server) SetFaults(faults ...Fault) error {
	if err := validateFaults(s.routes, faults); err != nil {
		return err
	}
	s.faults.Store(newFaultSet(faults))
	return nil
}

// Faults lists the faults in force.
func (s *Server) Faults() []Fault {
	return slices.Clone(s.faults.Load().faults)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.Store(newFaultSet(nil)) }

// SetKeepAlive changes the connection policy. It applies from the next idle
// period or request of every connection, open or new.
func (s *Server) SetKeepAlive(ka KeepAlive) error {
	if err := validateKeepAlive(ka); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.policy.Store(&ka)
	return nil
}

// KeepAlive is the connection policy in force.
func (s *Server) KeepAlive() KeepAlive { return *s.policy.Load() }

// closeWait bounds how long Close waits for handlers and connections.
const closeWait = 5 * time.Second

// Close stops both listeners, closes every connection, and waits (at most a
// few seconds) for every goroutine the server started.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancelBase() // wakes handlers sleeping in latency or slow-body faults
		err := errors.Join(s.svc.Close(), s.adm.Close())
		s.conns.closeAll()
		deadline := time.NewTimer(closeWait)
		defer deadline.Stop()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			// busy counts connections with a handler running, so it is zero only
			// when every handler has returned.
			if isClosed(s.serveDone) && s.conns.busy.Load() == 0 && s.conns.serving.Load() == 0 {
				s.closeErr = err
				return
			}
			select {
			case <-tick.C:
			case <-deadline.C:
				s.closeErr = errors.Join(err, fmt.Errorf("fakeservers: %s: close: after %s still %d connections in a handler and %d served",
					s.cfg.Service, closeWait, s.conns.busy.Load(), s.conns.serving.Load()))
				return
			}
		}
	})
	return s.closeErr
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Canonical header keys, computed once so the hot path indexes maps directly.
var (
	keyRequestID   = http.CanonicalHeaderKey(HeaderRequestID)
	keyDigest      = http.CanonicalHeaderKey(HeaderBodyDigest)
	keyAttempt     = http.CanonicalHeaderKey(HeaderAttempt)
	keyFault       = http.CanonicalHeaderKey(HeaderFault)
	valJSON        = []string{"application/json"}
	valClose       = []string{"close"}
	attemptHeaders = func() [][]string {
		v := make([][]string, 33)
		for i := range v {
			v[i] = []string{strconv.Itoa(i)}
		}
		return v
	}()
)

func attemptHeader(n int32) []string {
	if n >= 0 && int(n) < len(attemptHeaders) {
		return attemptHeaders[n]
	}
	return []string{strconv.Itoa(int(n))}
}

// ServeHTTP is the instrumented core every service shares: it records the
// request, applies latency and faults, runs the route and writes the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()

	tc := connFromContext(r.Context())
	var connID uint64
	var nth int64
	if tc != nil {
		tc.noteRequest(r)
		nth = tc.begin()
		defer tc.end(nil)
		connID = tc.id
	}
	if max := s.policy.Load().MaxRequestsPerConn; max > 0 && nth >= int64(max) {
		// Like nginx's keepalive_requests; for h2 net/http turns this into a GOAWAY.
		w.Header()["Connection"] = valClose
	}

	var reqID string
	if v := r.Header[keyRequestID]; len(v) > 0 {
		reqID = v[0]
	}
	routeIdx, param, miss := match(s.routes, r.Method, r.URL.Path)
	if tc != nil && routeIdx >= 0 {
		tc.noteRoute(&s.routes[routeIdx])
	}
	slot, gen, attempt := s.log.begin(reqID, connID, arrived, routeIdx, r.Method, connBits(r.ProtoMajor == 1 && r.ProtoMinor == 0, r.Close))
	// The outcome is recorded before the answer is written, so whoever reads
	// Stats after the client saw the answer (or the failure) finds it; the
	// deferred finish only adds the end time of slow or aborted answers.
	out := outcome{}
	finished := false
	settle := func(withEnd bool) {
		took := time.Duration(-1)
		if withEnd {
			took = time.Since(arrived)
			finished = true
		}
		s.log.finish(slot, gen, took, out)
	}
	defer func() {
		if !finished {
			settle(true)
		}
	}()
	w.Header()[keyAttempt] = attemptHeader(attempt)

	if miss != nil {
		out.status = miss.status
		settle(true)
		writeResponse(w, miss)
		return
	}

	dec := s.faults.Load().decide(s.dice, routeIdx, s.routes, r.Method)
	out.faults, out.draw = dec.faults, dec.draw
	if !s.wait(r.Context(), s.latency()+dec.delay.Std()) {
		return // the client went away or the server is closing
	}
	f := dec.shape
	if f == nil && dec.faults != 0 {
		w.Header()[keyFault] = []string{FaultDelay}
	}
	if f != nil {
		w.Header()[keyFault] = []string{f.label()}
		if f.Kind == FaultStatus {
			out.status, out.retryAfter = f.Status, f.RetryAfter
			settle(true)
			writeResponse(w, faultResponse(f.Status, f))
			return
		}
	}

	resp, orderID := s.routes[routeIdx].handle(s, r, param)
	out.orderID = orderID
	if f == nil {
		out.status = resp.status
		settle(true)
		writeResponse(w, resp)
		return
	}
	switch f.Kind {
	case FaultProcessThenFail:
		if f.Then == ThenStatus {
			status := f.Status
			if status == 0 {
				status = http.StatusInternalServerError
			}
			out.status, out.retryAfter = status, f.RetryAfter
			settle(true)
			writeResponse(w, faultResponse(status, f))
			return
		}
		out.status = 0 // no response at all
		settle(false)
		abortConn(w, r, true)
	case FaultSlowBody:
		out.status = resp.status
		settle(false)
		s.writeSlow(w, r, resp, f.BytesPerSecond)
	case FaultCutBody:
		out.status = resp.status
		cut := f.CutAfterBytes
		if cut == 0 || cut >= len(resp.body) {
			cut = len(resp.body) / 2
		}
		settle(false)
		writeHeaders(w, resp)
		_, _ = w.Write(resp.body[:cut])
		abortConn(w, r, false)
	case FaultCloseAfterHeaders:
		out.status = resp.status
		settle(false)
		writeHeaders(w, resp)
		abortConn(w, r, false)
	default:
		out.status = resp.status
		settle(true)
		writeResponse(w, resp)
	}
}

type outcome struct {
	status  int
	faults  uint8
	draw    uint32
	orderID string
	// retryAfter is the Retry-After the answer carries ("" for none).
	retryAfter string
}

func (s *Server) latency() time.Duration {
	d := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		s.jitterMu.Lock()
		d += time.Duration(s.jitter.Int64N(int64(s.cfg.Jitter)))
		s.jitterMu.Unlock()
	}
	return d
}

// wait sleeps for d unless ctx ends first; it reports whether the full time passed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeHeaders(w http.ResponseWriter, resp *response) {
	h := w.Header()
	h["Content-Type"] = valJSON
	h["Content-Length"] = resp.clen
	h[keyDigest] = resp.digest
	for _, kv := range resp.extra {
		h.Set(kv[0], kv[1])
	}
	w.WriteHeader(resp.status)
}

func writeResponse(w http.ResponseWriter, resp *response) {
	writeHeaders(w, resp)
	_, _ = w.Write(resp.body)
}

func faultResponse(status int, f *Fault) *response {
	resp := errorResponse(status, "injected_fault", "fault "+f.label()+" answered "+strconv.Itoa(status))
	if f.RetryAfter != "" {
		resp.extra = [][2]string{{"Retry-After", f.RetryAfter}}
	}
	return resp
}

// writeSlow trickles the body at rate bytes per second, in about ten
// pieces per second, flushing each so the client really waits.
func (s *Server) writeSlow(w http.ResponseWriter, r *http.Request, resp *response, rate int) {
	writeHeaders(w, resp)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	chunk := max(1, rate/10)
	start := time.Now()
	for sent := 0; sent < len(resp.body); {
		n := min(chunk, len(resp.body)-sent)
		if _, err := w.Write(resp.body[sent : sent+n]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		sent += n
		due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
		if !s.wait(r.Context(), time.Until(due)) {
			return
		}
	}
}

// abortConn ends the exchange without a complete response: for HTTP/1.1 the
// connection is closed (reset=true: with a TCP RST, no TLS close_notify), for
// HTTP/2 the stream is reset, which is all h2 allows a handler to do. With
// reset=true nothing has been written and nothing is flushed: a flush would
// send an implicit "200 OK" before the connection dies, and the client must
// see no response at all.
func abortConn(w http.ResponseWriter, r *http.Request, reset bool) {
	rc := http.NewResponseController(w)
	if !reset {
		_ = rc.Flush()
	}
	if r.ProtoMajor == 1 {
		if conn, _, err := rc.Hijack(); err == nil {
			if tc := unwrapConn(conn); reset && tc != nil {
				_ = tc.reset()
				return
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
