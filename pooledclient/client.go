package pooledclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Option configures NewPool and NewClient.
type Option func(*options)

type options struct {
	reg       prometheus.Registerer
	gatherer  prometheus.Gatherer // reg, when it can gather (a Registry does)
	namespace string
	clock     Clock
	onState   func(service string, from, to BreakerState)
}

// WithRegisterer registers the metrics on reg instead of a private registry.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithMetricsNamespace prefixes every metric name with namespace and "_"
// (e.g. "checkout" gives checkout_http_pool_active_connections), for a team
// whose metrics live under its own prefix. Without it the pool metrics
// carry the common names (MetricActiveConnections...).
func WithMetricsNamespace(namespace string) Option {
	return func(o *options) { o.namespace = namespace }
}

// WithClock replaces the wall clock of the breaker, backoff and retry budget.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithStateChange calls f on every breaker state change, after the breaker's
// lock is released (f may call back into the client).
func WithStateChange(f func(service string, from, to BreakerState)) Option {
	return func(o *options) { o.onState = f }
}

func buildOptions(opts []Option) options {
	o := options{clock: RealClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	o.gatherer, _ = o.reg.(prometheus.Gatherer)
	return o
}

// Client is one downstream service's HTTP client. It satisfies
// interface{ Do(*http.Request) (*http.Response, error) } and is safe for
// concurrent use. As with net/http, the caller must close every response
// body: the body's end (EOF or Close) is what frees the connection slot.
type Client struct {
	gatherer  prometheus.Gatherer // nil when the registerer given cannot gather
	name      string
	cfg       Config
	clock     Clock
	transport *http.Transport
	conns     *connSet
	sem       chan struct{}
	breaker   *breaker
	backoff   *backoff
	budget    *retryBudget
	epochs    epochs
	isFailure func(status int, err error) bool

	m             *metrics
	poolWait      prometheus.Observer
	poolExhausted prometheus.Counter

	closed    atomic.Bool
	stopWarm  context.CancelFunc
	warmGroup sync.WaitGroup
}

// NewClient builds a client for one service; prefer NewPool for several.
func NewClient(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	m, err := newMetrics(o.reg, o.namespace)
	if err != nil {
		return nil, fmt.Errorf("pooledclient: %s: registering metrics: %w", cfg.Name, err)
	}
	return newClient(cfg, o, m), nil
}

func newClient(cfg Config, o options, m *metrics) *Client {
	if cfg.WarmPath == "" {
		cfg.WarmPath = "/"
	}
	if cfg.Retry.MaxAttempts <= 0 {
		cfg.Retry.MaxAttempts = 1
	}
	cl := &Client{
		gatherer:      o.gatherer,
		name:          cfg.Name,
		cfg:           cfg,
		clock:         o.clock,
		conns:         newConnSet(cfg.Name, m, cfg.MaxLifetime),
		sem:           make(chan struct{}, cfg.MaxConnsPerHost),
		backoff:       newBackoff(cfg.Retry, cfg.Seed),
		budget:        newRetryBudget(cfg.Retry, o.clock),
		m:             m,
		poolWait:      m.poolWait.WithLabelValues(cfg.Name),
		poolExhausted: m.poolExhausted.WithLabelValues(cfg.Name),
		isFailure:     cfg.Breaker.IsFailure,
	}
	if cl.isFailure == nil {
		cl.isFailure = DefaultIsFailure
	}
	cl.epochs.init(cfg.RequestTimeout)
	stateGauge := m.breakerState.WithLabelValues(cfg.Name)
	stateGauge.Set(float64(StateClosed))
	cl.breaker = newBreaker(cfg.Breaker, o.clock, func(from, to BreakerState) {
		stateGauge.Set(float64(to))
		m.breakerTrans.WithLabelValues(cfg.Name, from.String(), to.String()).Inc()
		if o.onState != nil {
			o.onState(cfg.Name, from, to)
		}
	})

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(cfg.HTTP2)
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	cl.transport = &http.Transport{
		// Never a proxy: services are called directly. The hook runs before
		// every transport attempt, so it is where a silent replay is refused.
		Proxy:                 cl.gateReplay,
		DialContext:           cl.conns.dialContext(dialer),
		TLSClientConfig:       &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		DisableKeepAlives:     cfg.MaxIdleConns == 0,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		MaxConnsPerHost:       cfg.MaxConnsPerHost, // backstop: the slots already bound it
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     cfg.HTTP2,
		Protocols:             protocols,
	}

	ctx, cancel := context.WithCancel(context.Background())
	cl.stopWarm = cancel
	if cfg.WarmInterval > 0 && cfg.MinConns > 0 {
		cl.warmGroup.Go(func() { cl.keepWarm(ctx) })
	}
	return cl
}

// DefaultIsFailure is the breaker's default classification: connection
// errors, timeouts and 5xx count as failures; 4xx (429 included) never do.
// Calls cancelled by the caller count neither way.
func DefaultIsFailure(status int, err error) bool {
	if err != nil {
		return true
	}
	return status >= 500
}

// Name returns the service name.
func (cl *Client) Name() string { return cl.name }

// Config returns the client's configuration.
func (cl *Client) Config() Config { return cl.cfg }

// Stats returns the exact connection counts.
func (cl *Client) Stats() ConnStats { return cl.conns.stats() }

// BreakerState returns the breaker's current state.
func (cl *Client) BreakerState() BreakerState { return cl.breaker.State() }

// CloseIdleConnections closes the connections not carrying a call.
func (cl *Client) CloseIdleConnections() { cl.transport.CloseIdleConnections() }

// Close refuses new calls with ErrClosed, stops the background warmer and
// closes idle connections. Calls in flight finish normally.
func (cl *Client) Close() error {
	if !cl.closed.CompareAndSwap(false, true) {
		return nil
	}
	cl.stopWarm()
	cl.warmGroup.Wait()
	cl.transport.CloseIdleConnections()
	return nil
}

// Do sends req with the service's pool limits, retries and breaker.
//
// The returned body must be closed. Only GET, HEAD, OPTIONS, PUT, DELETE and
// requests with an Idempotency-Key header are retried, on connection errors
// and on 429, 500, 502, 503 and 504; a request body is replayed with
// req.GetBody. When retries are exhausted the last response is returned as
// is (a 503 is a response, not an error).
func (cl *Client) Do(req *http.Request) (*http.Response, error) {
	if cl.closed.Load() {
		closeReqBody(req.Body)
		return nil, fmt.Errorf("pooledclient: %s: %w: build a new client", cl.name, ErrClosed)
	}
	ctx, cancel, deadline := cl.callContext(req.Context())
	retry := cl.cfg.Retry.MaxAttempts > 1 && replayable(req)
	cl.budget.deposit()
	body := req.Body
	for attempt := 1; ; attempt++ {
		resp, c, err := cl.attempt(ctx, req, body, nil)
		if !retry || attempt >= cl.cfg.Retry.MaxAttempts || !cl.worthRetry(ctx, resp, err) {
			return cl.end(resp, c, err, cancel)
		}
		delay := cl.backoff.delay(attempt)
		reason := ""
		if resp != nil {
			reason = strconv.Itoa(resp.StatusCode)
			if ra, ok := retryAfter(resp.Header, cl.clock.Now()); ok {
				if ra > cl.cfg.Retry.MaxRetryAfter {
					cl.m.retriesDenied.WithLabelValues(cl.name, "retry_after").Inc()
					return cl.end(resp, c, err, cancel)
				}
				delay = max(delay, ra)
			}
		} else {
			reason = errorKind(err)
		}
		if !cl.timeLeft(ctx, deadline, delay) {
			cl.m.retriesDenied.WithLabelValues(cl.name, "deadline").Inc()
			return cl.end(resp, c, err, cancel)
		}
		if !cl.budget.withdraw() {
			cl.m.retriesDenied.WithLabelValues(cl.name, "budget").Inc()
			return cl.end(resp, c, err, cancel)
		}
		lastErr := err
		if resp != nil {
			drainAndClose(resp.Body)
			lastErr = fmt.Errorf("pooledclient: %s: %s %s: last attempt answered %s", cl.name, req.Method, req.URL.Redacted(), resp.Status)
		}
		if err := cl.sleep(ctx, delay); err != nil {
			if cancel != nil {
				cancel()
			}
			return nil, fmt.Errorf("pooledclient: %s: waiting %s before retry %d: %w", cl.name, delay, attempt, errors.Join(err, lastErr))
		}
		cl.m.retries.WithLabelValues(cl.name, reason).Inc()
		if req.Body != nil && req.Body != http.NoBody {
			if body, err = req.GetBody(); err != nil {
				if cancel != nil {
					cancel()
				}
				return nil, fmt.Errorf("pooledclient: %s: rewinding the request body for a retry: %w", cl.name, err)
			}
		}
	}
}

// end returns the outcome of the last attempt; the per-call context (only
// created for caller contexts that can be cancelled) lives until the body
// ends.
func (cl *Client) end(resp *http.Response, c *call, err error, cancel context.CancelFunc) (*http.Response, error) {
	if cancel != nil {
		if c != nil && resp != nil {
			c.setCancel(cancel)
		} else {
			cancel()
		}
	}
	return resp, err
}

func (cl *Client) worthRetry(ctx context.Context, resp *http.Response, err error) bool {
	if resp != nil {
		return retryableStatus(resp.StatusCode)
	}
	if ctx.Err() != nil || errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrPoolExhausted) ||
		errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return true
}

// timeLeft reports whether sleeping delay still leaves time before the
// call's deadline (and the caller's), so a retry is never started that
// could only time out.
func (cl *Client) timeLeft(ctx context.Context, deadline time.Time, delay time.Duration) bool {
	now := cl.clock.Now()
	if !deadline.IsZero() && !now.Add(delay).Before(deadline) {
		return false
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Add(delay).Before(d) {
		return false
	}
	return true
}

func (cl *Client) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := cl.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// callContext derives the context of one logical call. RequestTimeout must
// cover the body read, so the context must outlive Do; cancelling it from
// the body wrapper would cost a context and a timer per call. Instead, calls
// whose caller context cannot be cancelled (the common case) share a
// deadline context per short time slot (see epochs); only cancellable caller
// contexts get their own, cancelled when the body ends.
func (cl *Client) callContext(parent context.Context) (context.Context, context.CancelFunc, time.Time) {
	if cl.cfg.RequestTimeout <= 0 {
		return parent, nil, time.Time{}
	}
	wall := time.Now()
	now := wall
	if _, real := cl.clock.(RealClock); !real {
		now = cl.clock.Now()
	}
	deadline := now.Add(cl.cfg.RequestTimeout)
	if parent.Done() != nil {
		ctx, cancel := context.WithDeadline(parent, wall.Add(cl.cfg.RequestTimeout))
		return ctx, cancel, deadline
	}
	ep := cl.epochs.current(wall)
	if parent == context.Background() {
		return ep, nil, deadline
	}
	return &valuesCtx{Context: ep, values: parent}, nil, deadline
}

// attempt sends one attempt: breaker, connection slot, transport.
func (cl *Client) attempt(ctx context.Context, orig *http.Request, body io.ReadCloser, gate *warmGate) (*http.Response, *call, error) {
	tok, err := cl.breaker.Allow()
	if err != nil {
		closeReqBody(body)
		return nil, nil, fmt.Errorf("pooledclient: %s: %w: failing fast without calling; it probes again after %s",
			cl.name, err, cl.cfg.Breaker.OpenDelay)
	}
	if err := cl.acquire(ctx); err != nil {
		cl.breaker.Cancel(tok)
		closeReqBody(body)
		return nil, nil, err
	}
	c := &call{cl: cl, tok: tok}
	c.trace.GotConn = func(info httptrace.GotConnInfo) {
		c.bind(info.Conn)
		if gate != nil {
			gate.arrive(ctx)
		}
	}
	c.ctx = attemptCtx{Context: ctx, c: c}
	c.req = *orig.WithContext(c.traceContext(ctx))
	c.req.Body = body
	if c.req.Header == nil {
		c.req.Header = make(http.Header)
	}
	resp, err := cl.transport.RoundTrip(&c.req)
	if err != nil {
		cl.m.connErrors.WithLabelValues(cl.name, errorKind(err)).Inc()
		c.finish(err)
		return nil, nil, fmt.Errorf("pooledclient: %s: %s %s: %w", cl.name, orig.Method, orig.URL.Redacted(), err)
	}
	c.status = resp.StatusCode
	c.body = resp.Body
	resp.Body = c
	return resp, c, nil
}

// acquire takes a connection slot, waiting at most PoolWait. The slots
// (MaxConnsPerHost of them) are held from the attempt until its response
// body ends, so at most MaxConnsPerHost calls ever reach the transport and
// the transport never queues a call without bound.
func (cl *Client) acquire(ctx context.Context) error {
	select {
	case cl.sem <- struct{}{}:
		cl.poolWait.Observe(0)
		return nil
	default:
	}
	start := cl.clock.Now()
	if cl.cfg.PoolWait > 0 {
		t := cl.clock.NewTimer(cl.cfg.PoolWait)
		defer t.Stop()
		select {
		case cl.sem <- struct{}{}:
			cl.poolWait.Observe(cl.clock.Now().Sub(start).Seconds())
			return nil
		case <-ctx.Done():
			cl.poolWait.Observe(cl.clock.Now().Sub(start).Seconds())
			return fmt.Errorf("pooledclient: %s: waiting for a connection slot: %w", cl.name, context.Cause(ctx))
		case <-t.C():
		}
	}
	cl.poolWait.Observe(cl.clock.Now().Sub(start).Seconds())
	cl.poolExhausted.Inc()
	return fmt.Errorf("pooledclient: %s: all %d connections busy for PoolWait %s; raise MaxConnsPerHost or shed load: %w",
		cl.name, cl.cfg.MaxConnsPerHost, cl.cfg.PoolWait, ErrPoolExhausted)
}

// call is one attempt in flight. It is also the response body handed to the
// caller, so that the end of the body (EOF, error or Close), and not the
// return of Do, releases the slot, ends the connection's activity and
// reports the outcome to the breaker. One allocation carries the request
// copy, the trace and the body wrapper.
type call struct {
	req    http.Request
	trace  httptrace.ClientTrace
	ctx    attemptCtx
	cl     *Client
	tok    breakerToken
	conn   atomic.Pointer[trackedConn]
	body   io.ReadCloser
	status int
	// ownsTrace: the attempt's context answers httptrace's key itself
	// (see traceContext).
	ownsTrace bool
	done      atomic.Bool
	cancel    atomic.Pointer[context.CancelFunc]
}

func (c *call) bind(conn net.Conn) {
	tc := trackedOf(conn)
	if tc == nil {
		return
	}
	tc.acquire()
	if old := c.conn.Swap(tc); old != nil {
		old.release() // the transport moved the request to another connection
	}
}

// attemptCtx is the context of one attempt: the call's context that also
// leads from the request back to its call (for gateReplay) and, where it
// can, to the call's trace (see traceContext). It is part of
// the call's single allocation.
type attemptCtx struct {
	context.Context
	c *call
}

type callKey struct{}

func (a *attemptCtx) Value(key any) any {
	if key == (callKey{}) {
		return a.c
	}
	if a.c.ownsTrace && key == traceKey {
		return &a.c.trace
	}
	return a.Context.Value(key)
}

// gateReplay runs (as the transport's Proxy hook) before each connection
// the transport picks for a request. The second and later runs within one
// RoundTrip are the transport's silent replays, which net/http makes only on
// a reused connection, after either nothing of the request was written
// (safe: the server cannot have seen it) or, for a replayable request, the
// connection died before the first response byte (the server may have
// processed it). The second kind would be an attempt neither counted against
// MaxAttempts nor spaced by backoff, so it is refused: the attempt fails with
// the error that killed the connection and Do's own loop decides whether to
// retry (backoff, budget, breaker). See the package comment.
func (cl *Client) gateReplay(req *http.Request) (*url.URL, error) {
	c, _ := req.Context().Value(callKey{}).(*call)
	if c == nil {
		return nil, nil
	}
	tc := c.conn.Load()
	if tc == nil {
		return nil, nil // the attempt's first connection
	}
	sent, readErr := tc.lostRequest()
	if !sent {
		cl.m.replays.WithLabelValues(cl.name, "allowed").Inc()
		return nil, nil
	}
	cl.m.replays.WithLabelValues(cl.name, "refused").Inc()
	if readErr == nil {
		readErr = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("connection lost after the request was sent; not replayed silently (Do retries it with backoff if it may): %w", readErr)
}

func (c *call) setCancel(cancel context.CancelFunc) {
	c.cancel.Store(&cancel)
	if c.done.Load() { // the body already ended
		if p := c.cancel.Swap(nil); p != nil {
			(*p)()
		}
	}
}

func (c *call) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if err != nil {
		if err == io.EOF {
			c.finish(nil)
		} else {
			c.finish(err)
		}
	}
	return n, err
}

func (c *call) Close() error {
	err := c.body.Close()
	c.finish(nil)
	return err
}

func (c *call) finish(err error) {
	if !c.done.CompareAndSwap(false, true) {
		return
	}
	if tc := c.conn.Swap(nil); tc != nil {
		tc.release()
	}
	<-c.cl.sem
	// The caller gave up; says nothing about the service. A caller that
	// cancels with a cause gets the cause back from net/http, not
	// context.Canceled, so its context says so.
	if err != nil && (errors.Is(err, context.Canceled) || c.ctx.Context != nil && errors.Is(c.ctx.Err(), context.Canceled)) {
		c.cl.breaker.Cancel(c.tok)
	} else {
		c.cl.breaker.Done(c.tok, c.cl.isFailure(c.status, err))
	}
	if p := c.cancel.Swap(nil); p != nil {
		(*p)()
	}
}

func closeReqBody(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}

// valuesCtx is an epoch deadline context that keeps the caller's values.
type valuesCtx struct {
	context.Context
	values context.Context
}

func (v *valuesCtx) Value(key any) any {
	if x := v.values.Value(key); x != nil {
		return x
	}
	return v.Context.Value(key)
}

// epochs hands out shared deadline contexts. A call starting in slot
// [k*span, (k+1)*span) gets the slot's context, whose deadline is
// (k+1)*span + timeout: never earlier than its own start + timeout, and at
// most span later. One context and timer per slot instead of per call keeps
// the hot path at a handful of allocations.
type epochs struct {
	span    int64
	timeout time.Duration
	cur     atomic.Pointer[epoch]
}

type epoch struct {
	slot   int64
	ctx    context.Context
	cancel context.CancelFunc // released by the deadline's own timer
}

func (e *epochs) init(timeout time.Duration) {
	e.timeout = timeout
	span := timeout / 100
	span = min(max(span, 100*time.Microsecond), 10*time.Millisecond)
	e.span = int64(span)
}

func (e *epochs) current(now time.Time) context.Context {
	slot := now.UnixNano() / e.span
	p := e.cur.Load()
	if p != nil && p.slot == slot {
		return p.ctx
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, (slot+1)*e.span).Add(e.timeout))
	ep := &epoch{slot: slot, ctx: ctx, cancel: cancel}
	e.cur.CompareAndSwap(p, ep) // losing the race is fine: ours is valid for us
	return ctx
}

// Warm opens connections until MinConns are open. It sends MinConns
// concurrent HEAD requests to BaseURL+WarmPath and holds each one, between
// getting its connection and writing, until all of them hold one: a held
// connection cannot be handed to another request, so MinConns distinct
// connections are open when they are released. With HTTP/2 one request is
// sent: the calls share one connection.
func (cl *Client) Warm(ctx context.Context) error {
	if cl.closed.Load() {
		return fmt.Errorf("pooledclient: %s: warm: %w", cl.name, ErrClosed)
	}
	if cl.cfg.MinConns <= 0 || cl.conns.stats().Open >= cl.cfg.MinConns {
		return nil
	}
	if cl.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cl.cfg.RequestTimeout)
		defer cancel()
	}
	n := cl.cfg.MinConns
	var gate *warmGate
	if cl.cfg.HTTP2 && strings.HasPrefix(cl.cfg.BaseURL, "https:") {
		n = 1 // HTTP/2's hook runs under the connection's lock: no gate there
	} else {
		gate = &warmGate{want: int32(n), all: make(chan struct{})}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodHead, cl.cfg.BaseURL+cl.cfg.WarmPath, nil)
			if err == nil {
				var resp *http.Response
				if resp, _, err = cl.attempt(ctx, req, nil, gate); err == nil {
					drainAndClose(resp.Body)
				}
			}
			if err != nil {
				errs[i] = err
				gate.giveUp() // release the others: this one will never hold a connection
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pooledclient: %s: warm: %w", cl.name, err)
	}
	return nil
}

// warmGate holds Warm's requests, each on its own connection, until all of
// them got one (or one failed, or the context ended).
type warmGate struct {
	want    int32
	arrived atomic.Int32
	once    sync.Once
	all     chan struct{}
}

func (g *warmGate) arrive(ctx context.Context) {
	if g.arrived.Add(1) == g.want {
		g.giveUp()
	}
	select {
	case <-g.all:
	case <-ctx.Done():
	}
}

func (g *warmGate) giveUp() {
	if g != nil {
		g.once.Do(func() { close(g.all) })
	}
}

func (cl *Client) keepWarm(ctx context.Context) {
	t := time.NewTicker(cl.cfg.WarmInterval)
	defer t.Stop()
	for {
		_ = cl.Warm(ctx) // failures show in the metrics; the next tick tries again
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ErrNoGatherer is returned by GatherMetrics when the client's metrics were
// registered on a Registerer that cannot gather (WithRegisterer with one
// that is no prometheus.Gatherer): scrape that registry where it is served.
var ErrNoGatherer = errors.New("pooledclient: the metrics' registerer cannot gather")

// GatherMetrics returns the metrics of the client's registry, as a scrape
// of it would (every client sharing that registry included): what the
// harness compares with the servers' truth (harness.MetricsGatherer).
func (c *Client) GatherMetrics() ([]*dto.MetricFamily, error) {
	if c.gatherer == nil {
		return nil, ErrNoGatherer
	}
	return c.gatherer.Gather()
}
