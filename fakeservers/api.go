package fakeservers

import (
	"encoding/json"
	"fmt"
	"time"
)

// Service names. They are also the names of the Toxiproxy proxies and the
// DNS names in the generated leaf certificate.
const (
	Payment      = "payment"
	Inventory    = "inventory"
	Notification = "notification"
)

// Services lists every fake service, in a stable order.
var Services = []string{Payment, Inventory, Notification}

// Headers the fake services read or write.
const (
	HeaderRequestID      = "X-Request-ID"     // groups the attempts of one logical call
	HeaderIdempotencyKey = "Idempotency-Key"  // makes a repeated charge return the first one
	HeaderBodyDigest     = "X-Body-Digest"    // "sha256=<hex>" of the full response body
	HeaderAttempt        = "X-Server-Attempt" // which attempt of its X-Request-ID the server saw this as (1-based)
	HeaderFault          = "X-Fault-Applied"  // name of the fault that shaped this response, if any
)

// DigestPrefix starts every HeaderBodyDigest value; the hex SHA-256 of the
// full body follows it.
const DigestPrefix = "sha256="

// Admin paths, served on the admin listener only.
const (
	AdminStatsPath     = "/__admin/stats"      // GET: Stats as JSON
	AdminConnsPath     = "/__admin/conns"      // GET: ConnCounts as JSON, cheap enough to poll every 100ms
	AdminResetPath     = "/__admin/reset"      // POST: forget history, zero the peak, keep faults and keep-alive; {"seed": N} reseeds the draws
	AdminFaultsPath    = "/__admin/faults"     // GET: []Fault; POST: replace with []Fault (or one Fault); DELETE: clear
	AdminKeepAlivePath = "/__admin/keepalive"  // GET/POST: KeepAlive
	AdminCAPath        = "/__admin/ca.pem"     // GET: the CA certificate, PEM (404 when TLS is off)
	AdminHealthPath    = "/__admin/health"     // GET: 200 "ok"
	AdminProtocolPath  = "/__admin/protocol"   // GET/POST: Protocol (whether new connections are offered h2)
	AdminCloseIdlePath = "/__admin/close-idle" // POST: close every service connection with no request in flight; IdleClose as JSON
)

// Duration is a time.Duration that travels in JSON as a Go duration string
// ("150ms", "2s"). Plain numbers are read as nanoseconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (want e.g. \"250ms\"): %q", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("not a duration (want e.g. \"250ms\"): %s", b)
	}
	*d = Duration(n)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Protocol values of ConnRecord.Protocol.
const (
	ProtoHTTP1 = "HTTP/1.1"
	ProtoH2    = "h2"
)

// ConnRecord is the server's truth about one accepted connection.
type ConnRecord struct {
	ID         uint64    `json:"id"`
	Remote     string    `json:"remote"`
	Accepted   time.Time `json:"accepted"`
	Closed     time.Time `json:"closed,omitzero"` // zero while open
	Requests   int       `json:"requests"`
	Protocol   string    `json:"protocol"` // ProtoHTTP1 or ProtoH2
	TLS        bool      `json:"tls"`
	TLSResumed bool      `json:"tls_resumed"`
	// InFlight is the requests the server was serving on the connection
	// when the record was taken (HTTP/2 streams count one each).
	InFlight int `json:"in_flight,omitempty"`
	// LastRoute is the method and route pattern of the last request the
	// connection carried, e.g. "GET /v1/items/{sku}"; "" before the first
	// or when no route matched.
	LastRoute string `json:"last_route,omitempty"`
}

// IdleClose is what a server did when asked to close its idle connections
// (POST /__admin/close-idle): a keep-alive connection with no request in
// flight is closed, as an idle timeout would; one serving a request is left
// open. Records are taken just before the close.
type IdleClose struct {
	Now    time.Time    `json:"now"`    // the server's clock when it closed them
	Closed []ConnRecord `json:"closed"` // had no request in flight: closed
	Busy   []ConnRecord `json:"busy"`   // serving a request: left open
}

// RequestRecord is the server's truth about one request it received.
type RequestRecord struct {
	RequestID string    `json:"request_id"` // X-Request-ID, "" when absent
	Attempt   int       `json:"attempt"`    // 1 for the first request with this id, 2 for the next...
	ConnID    uint64    `json:"conn_id"`
	Arrived   time.Time `json:"arrived"`
	Finished  time.Time `json:"finished"`
	Method    string    `json:"method"`
	Route     string    `json:"route"` // the route pattern, e.g. "/v1/items/{sku}"
	Status    int       `json:"status"`
	Fault     string    `json:"fault,omitempty"` // fault kind applied, "" when none
	// Draw is the position, since the last reset, of this request's first
	// seeded fault draw (0: it took none). Ordered by Draw, the requests
	// show the draws as they were taken, which the same seed replays
	// however the requests raced to the server.
	Draw    uint32 `json:"draw,omitempty"`
	OrderID string `json:"order_id,omitempty"`
	// RetryAfter is the Retry-After header the answer carried, verbatim
	// (seconds or an HTTP-date), "" when it carried none.
	RetryAfter string `json:"retry_after,omitempty"`
	// HTTP10 marks a request that arrived as HTTP/1.0 (a reverse proxy's
	// upstream default, e.g. nginx without proxy_http_version 1.1).
	HTTP10 bool `json:"http10,omitempty"`
	// Close marks a request that asked for its connection to be closed
	// after the answer: "Connection: close", or HTTP/1.0 without
	// "Connection: keep-alive".
	Close bool `json:"close,omitempty"`
}

// Protocol is what the service offers new connections, as served by
// GET/POST /__admin/protocol.
type Protocol struct {
	HTTP2 bool `json:"http2"` // ALPN offers h2 (with TLS); false: HTTP/1.1 only
}

// Stats is everything a fake service knows, as served by GET /__admin/stats.
type Stats struct {
	Service         string          `json:"service"`
	Now             time.Time       `json:"now"`
	OpenConnections int             `json:"open_connections"`
	BusyConnections int             `json:"busy_connections"` // open connections in the middle of a request
	PeakOpen        int             `json:"peak_open"`        // since start or the last reset
	PeakBusy        int             `json:"peak_busy"`        // since start or the last reset
	Accepted        int             `json:"accepted"`         // connections accepted since start or the last reset
	Connections     []ConnRecord    `json:"connections"`      // accepted since the last reset, plus those still open
	Requests        []RequestRecord `json:"requests"`         // since the last reset, in arrival order
	Charges         map[string]int  `json:"charges"`          // order id -> charges created (payment only)
}

// ConnCounts is the live connection counters alone, as served by GET
// /__admin/conns: a read that costs the same however long the run has been.
type ConnCounts struct {
	Open     int `json:"open"`
	Busy     int `json:"busy"`
	PeakOpen int `json:"peak_open"`
	PeakBusy int `json:"peak_busy"`
	Accepted int `json:"accepted"`
}

// Fault kinds. A Fault has exactly one kind.
const (
	FaultStatus            = "status"              // answer Status (500, 502, 503, 504, 429), with RetryAfter if set
	FaultDelay             = "delay"               // wait Delay before handling
	FaultSlowBody          = "slow_body"           // write the body at BytesPerSecond
	FaultCutBody           = "cut_body"            // write CutAfterBytes of the body, then close the connection
	FaultProcessThenFail   = "process_then_fail"   // commit the side effect, then fail with Then
	FaultCloseAfterHeaders = "close_after_headers" // write the headers, then close the connection
)

// Values of Fault.Then for FaultProcessThenFail.
const (
	ThenReset  = "reset"  // close the connection without a response
	ThenStatus = "status" // answer Status (default 500)
)

// Fault is one HTTP-level fault, scoped by route and method. Route and Method
// empty match everything. Probability 0 means 1 (always); draws come from the
// server's seeded source, so a run with the same seed and the same requests
// sees the same faults.
type Fault struct {
	Name           string   `json:"name,omitempty"`
	Kind           string   `json:"kind"`
	Route          string   `json:"route,omitempty"`  // a route pattern, e.g. "/v1/charges"
	Method         string   `json:"method,omitempty"` // e.g. "POST"
	Probability    float64  `json:"probability,omitempty"`
	Status         int      `json:"status,omitempty"`
	RetryAfter     string   `json:"retry_after,omitempty"` // sent verbatim: seconds or an HTTP-date
	Delay          Duration `json:"delay,omitempty"`
	BytesPerSecond int      `json:"bytes_per_second,omitempty"`
	CutAfterBytes  int      `json:"cut_after_bytes,omitempty"`
	Then           string   `json:"then,omitempty"`
}

// KeepAlive is the server's connection policy. Zero values mean "no limit"
// for MaxRequestsPerConn and Go's defaults for the timeouts.
type KeepAlive struct {
	IdleTimeout        Duration `json:"idle_timeout,omitempty"`
	ReadHeaderTimeout  Duration `json:"read_header_timeout,omitempty"`
	MaxRequestsPerConn int      `json:"max_requests_per_conn,omitempty"`
}

// ChargeRequest is the body of POST /v1/charges.
type ChargeRequest struct {
	OrderID  string `json:"order_id"`
	Amount   int64  `json:"amount"` // minor units
	Currency string `json:"currency"`
}

// Charge is the body of a 201 from POST /v1/charges and of GET /v1/charges/{id}.
type Charge struct {
	ID       string    `json:"id"`
	OrderID  string    `json:"order_id"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created"`
}
