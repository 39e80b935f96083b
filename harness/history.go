package harness

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/internal/cpuload"
)

// HistoryVersion is the version of the saved history format; LoadHistory
// refuses any other so that a verdict is never recomputed from data it
// misreads. 3: LeakRecord.Processes, without which a driver's goroutine
// verdict would be misread as passed.
const HistoryVersion = 3

// ErrHistoryVersion is returned by LoadHistory for a history saved in another format.
var ErrHistoryVersion = errors.New("unsupported history version")

// ServiceID names a fake service in a CallRecord with one byte instead of a
// string, which keeps a recorded call small.
type ServiceID uint8

// Service ids; the zero value is "unknown".
const (
	ServiceUnknown ServiceID = iota
	ServiceInventory
	ServicePayment
	ServiceNotification
)

var serviceIDNames = [...]string{"unknown", fakeservers.Inventory, fakeservers.Payment, fakeservers.Notification}

// ServiceIDOf maps a service name to its id (ServiceUnknown when unknown).
func ServiceIDOf(name string) ServiceID {
	for i, n := range serviceIDNames {
		if i > 0 && n == name {
			return ServiceID(i)
		}
	}
	return ServiceUnknown
}

func (s ServiceID) String() string {
	if int(s) < len(serviceIDNames) {
		return serviceIDNames[s]
	}
	return "service(" + strconv.Itoa(int(s)) + ")"
}

func (s ServiceID) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *ServiceID) UnmarshalText(b []byte) error {
	v, err := parseEnum(b, serviceIDNames[:], "service")
	*s = ServiceID(v)
	return err
}

// Op is the operation of one logical call.
type Op uint8

// Operations across the three services.
const (
	OpUnknown          Op = iota
	OpGetItem             // inventory: GET /v1/items/{sku}
	OpCreateCharge        // payment: POST /v1/charges
	OpSendNotification    // notification: POST /v1/notifications
)

var opNames = [...]string{"unknown", "get_item", "create_charge", "send_notification"}

// Service is the service an operation goes to.
func (o Op) Service() ServiceID {
	switch o {
	case OpGetItem:
		return ServiceInventory
	case OpCreateCharge:
		return ServicePayment
	case OpSendNotification:
		return ServiceNotification
	}
	return ServiceUnknown
}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

func (o *Op) UnmarshalText(b []byte) error {
	v, err := parseEnum(b, opNames[:], "op")
	*o = Op(v)
	return err
}

// ErrorClass is the small set of ways a call can fail that the checks reason
// about. See Classify for how an error is mapped to a class.
type ErrorClass uint8

// Error classes.
const (
	ClassNone          ErrorClass = iota // the call returned a response and its body was read
	ClassTimeout                         // a deadline fired (client timeout, context deadline, net timeout)
	ClassConnRefused                     // the connection was refused
	ClassReset                           // the peer reset the connection (or a broken pipe)
	ClassEOF                             // the connection closed early (EOF, unexpected EOF)
	ClassTLS                             // the TLS handshake or certificate verification failed
	ClassPoolExhausted                   // the client failed fast because its pool was exhausted
	ClassCircuitOpen                     // the client's circuit breaker refused the call
	ClassCanceled                        // the harness's context was canceled
	ClassHang                            // the client did not return within the watchdog bound
	ClassOther                           // anything else
)

var classNames = [...]string{"none", "timeout", "conn_refused", "reset", "eof", "tls", "pool_exhausted", "circuit_open", "canceled", "hang", "other"}

// ParseErrorClass returns the class with this name, or false.
func ParseErrorClass(name string) (ErrorClass, bool) {
	v, err := parseEnum([]byte(name), classNames[:], "error class")
	return ErrorClass(v), err == nil
}

func (c ErrorClass) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

func (c ErrorClass) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

func (c *ErrorClass) UnmarshalText(b []byte) error {
	v, err := parseEnum(b, classNames[:], "error class")
	*c = ErrorClass(v)
	return err
}

// DigestState says whether a response body matched its X-Body-Digest header.
type DigestState uint8

// Digest states.
const (
	DigestNotRead  DigestState = iota // no body was read (the call failed before or during the read)
	DigestOK                          // the body matched the header
	DigestMismatch                    // the body did not match: the client handed back corrupted or truncated data
	DigestAbsent                      // the response had no digest header (not a poolproof fake service)
)

var digestNames = [...]string{"not_read", "ok", "mismatch", "absent"}

func (d DigestState) String() string {
	if int(d) < len(digestNames) {
		return digestNames[d]
	}
	return "digest(" + strconv.Itoa(int(d)) + ")"
}

func (d DigestState) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *DigestState) UnmarshalText(b []byte) error {
	v, err := parseEnum(b, digestNames[:], "digest state")
	*d = DigestState(v)
	return err
}

func parseEnum(b []byte, names []string, what string) (uint8, error) {
	for i, n := range names {
		if n == string(b) {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want one of %v)", what, b, names)
}

// CallRecord is one logical call as the workload saw it. It is kept to 32
// bytes: times are nanosecond offsets from the workload start, names are
// one-byte enums, error texts are interned in History.ErrorTexts, and the
// request and order ids are derived from Seq (History.RequestID, History.OrderID).
type CallRecord struct {
	Start   int64       `json:"start"` // ns since the workload started
	End     int64       `json:"end"`   // ns since the workload started; for a hang, when the watchdog gave up
	Seq     uint32      `json:"seq"`   // the logical call number; same seed => same op for the same Seq
	Bytes   uint32      `json:"bytes"` // response body bytes read
	Status  int16       `json:"status,omitempty"`
	Err     uint16      `json:"err,omitempty"` // 1-based index into History.ErrorTexts; 0 = no error
	Service ServiceID   `json:"service"`
	Op      Op          `json:"op"`
	Class   ErrorClass  `json:"class"`
	Digest  DigestState `json:"digest"`
}

// Latency is how long the call took (for a hang: until the watchdog gave up).
func (c CallRecord) Latency() time.Duration { return time.Duration(c.End - c.Start) }

// OK reports a call that returned a 2xx response whose body was read intact.
func (c CallRecord) OK() bool {
	return c.Class == ClassNone && c.Status >= 200 && c.Status < 300 && c.Digest != DigestMismatch
}

// Sample is one reading of the samplers.
type Sample struct {
	At         int64 `json:"at"`         // ns since the workload started
	Goroutines int32 `json:"goroutines"` // runtime.NumGoroutine() minus the baseline minus the harness's own; see sampler.go
	FDs        int32 `json:"fds"`        // open file descriptors of this process; -1 when unavailable
	InFlight   int32 `json:"in_flight"`  // calls started and not yet recorded
	Abandoned  int32 `json:"abandoned"`  // hung calls whose goroutine is still running
	Done       int64 `json:"done"`       // calls recorded so far
	// ServerConns is the open server-side connections per service, in the
	// order of History.Services; -1 when not read at this sample.
	ServerConns []int32 `json:"server_conns,omitempty"`
	// CPUBusyMs is the machine's busy CPU time and CPUSelfMs this
	// process's, cumulative, in ms; both 0 where /proc cannot be read. What
	// other processes took between two samples (CPUShares) lets a
	// throughput check tell a slow client from a busy machine.
	CPUBusyMs int64 `json:"cpu_busy_ms,omitempty"`
	CPUSelfMs int64 `json:"cpu_self_ms,omitempty"`
	// Reported is what the client's own pool metrics said of each service
	// (MetricsGatherer), in the order of History.Services; nil when the
	// client reports none.
	Reported []ReportedPool `json:"reported,omitempty"`
}

// ServerTruth is one service's server-side truth at one moment.
type ServerTruth struct {
	Available bool               `json:"available"` // false: Observe failed or ErrNoServerTruth
	Err       string             `json:"err,omitempty"`
	Stats     *fakeservers.Stats `json:"stats,omitempty"`
}

// TeardownCall is one call of CloseIdleConnections or Close on a client.
type TeardownCall struct {
	Service string        `json:"service"`
	Method  string        `json:"method"` // "CloseIdleConnections" or "Close"
	Took    time.Duration `json:"took"`
	Err     string        `json:"err,omitempty"`
	Hung    bool          `json:"hung,omitempty"` // did not return within the teardown bound; abandoned
}

// How LeakRecord.Leaked was found. LeakFinderLabels counts the goroutines
// that carry the run's pprof label (every goroutine the client started
// during the run, except those started by runtime timers): a lower bound,
// taken when it is not zero. LeakFinderGoleak is goleak's count of every
// goroutine that is neither the baseline's nor the environment's.
const (
	LeakFinderLabels = "run label"
	LeakFinderGoleak = "goleak"
)

// LeakedGoroutine is a goroutine still running after teardown that was not
// there at the baseline and is not the environment's. State is empty when
// the run label found it (the goroutine profile records no state).
type LeakedGoroutine struct {
	Top   string `json:"top"`   // the function on top of its stack, where it is blocked
	Entry string `json:"entry"` // the function it was started with
	State string `json:"state"` // e.g. "chan receive"
	// Count is how many goroutines with this stack the entry stands for;
	// 0 means one (goleak's entries are one per goroutine).
	Count int `json:"count,omitempty"`
}

// ServerConnsAfter is what one service saw of the client's connections
// after teardown: the client closed its idle connections (when it can), the
// harness waited for the closes to land, then asked the servers to close
// every connection with no request in flight (when the environment can, see
// IdleConnCloser) and sorted them into the client's idle pool, which is no
// leak, and connections the client held.
type ServerConnsAfter struct {
	Available bool `json:"available"`
	// Open is the connections the client still held: open after teardown,
	// less the idle pooled ones the servers closed (IdleClosed).
	Open int    `json:"open"`
	Err  string `json:"err,omitempty"`
	// ClientClosedIdle is set when the client closed its own idle
	// connections at teardown (CloseIdleConnections or Close returned):
	// whatever it still had open then was not in its idle pool.
	ClientClosedIdle bool `json:"client_closed_idle,omitempty"`
	// IdleClosed is the idle pooled connections the servers closed at the
	// harness's request: connections the client kept for reuse, not a leak.
	IdleClosed int `json:"idle_closed,omitempty"`
	// Held describes the Open connections, grouped by why they count as
	// held and by the route they last carried; empty when the environment
	// cannot close or describe the servers' connections.
	Held []HeldConns `json:"held,omitempty"`
	// IdleCloseErr is why the servers could not be asked to close their
	// idle connections ("" when they were, or when nothing was open).
	IdleCloseErr string `json:"idle_close_err,omitempty"`
}

// HeldReason says why a connection still open on a server after teardown
// counts as held by the client rather than as part of its idle pool.
type HeldReason string

// Reasons a connection counts as held.
const (
	// HeldInFlight: the server was still serving a request on it (a
	// response the client is still reading, or gave up on without closing).
	HeldInFlight HeldReason = "in_flight"
	// HeldNotReturned: the server had answered, yet the connection was
	// still open after the client closed its idle connections, so it was
	// never given back to the pool: a response body never read to the end
	// or closed.
	HeldNotReturned HeldReason = "not_returned"
	// HeldBeyondPool: idle, but beyond the pool the client declared
	// (Contract.MaxConns, else UndeclaredPoolBound) for a client that cannot close its idle
	// connections itself: connections of pools the caller no longer
	// reaches, e.g. a new client per call.
	HeldBeyondPool HeldReason = "beyond_pool"
)

// HeldConns is a group of connections a service still saw open after
// teardown, held for one reason and last carrying one route.
type HeldConns struct {
	Reason    HeldReason `json:"reason"`
	LastRoute string     `json:"last_route,omitempty"` // e.g. "GET /v1/items/{sku}"; "" when none matched
	Count     int        `json:"count"`
	Requests  int        `json:"requests"` // carried by the whole group
	// Oldest and Newest are how long the group's longest- and
	// shortest-lived connections had been open when the servers were asked.
	Oldest time.Duration `json:"oldest"`
	Newest time.Duration `json:"newest"`
}

// LeakRecord is what the leak measurements found after teardown; the leak
// checks judge it.
type LeakRecord struct {
	GoroutinesMeasured bool              `json:"goroutines_measured"`
	GoroutineBaseline  int               `json:"goroutine_baseline"` // runtime.NumGoroutine() at the baseline
	Leaked             int               `json:"leaked"`             // client goroutines still running after teardown
	LeakedGoroutines   []LeakedGoroutine `json:"leaked_goroutines,omitempty"`
	LeakFinder         string            `json:"leak_finder,omitempty"` // LeakFinderLabels or LeakFinderGoleak

	FDsMeasured bool `json:"fds_measured"` // false where /proc/self/fd is unavailable
	FDBaseline  int  `json:"fd_baseline"`
	FDAfter     int  `json:"fd_after"`
	FDTolerance int  `json:"fd_tolerance"`

	ServerConns     map[string]ServerConnsAfter `json:"server_conns,omitempty"`
	ServerConnsWait time.Duration               `json:"server_conns_wait"` // how long the harness waited for them to reach zero

	// Processes are the child processes the client ran in (drivers, see
	// LeakReporter), as the client measured them; empty for a client in
	// this process. FDTolerance and ThreadTolerance bound their growth.
	Processes       []ProcessLeaks `json:"processes,omitempty"`
	ThreadTolerance int            `json:"thread_tolerance,omitempty"`

	// BeforeIdleClose is what the process held just before the servers
	// closed idle connections beyond the declared pool (nil when none
	// could be beyond it): the descriptors and goroutines those
	// connections kept, which the client itself would never have released.
	BeforeIdleClose *HeldBeforeIdleClose `json:"before_idle_close,omitempty"`
}

// ProcessCounts is what a process holds at one moment (from /proc/<pid>).
type ProcessCounts struct {
	FDs     int `json:"fds"`     // open file descriptors, sockets included
	Sockets int `json:"sockets"` // of which sockets
	Threads int `json:"threads"`
}

// ProcessLeaks is the leak measurement of a client that runs in a child
// process (a driver), taken by the client itself (see LeakReporter): the
// process's counts before the first call and after idle close.
type ProcessLeaks struct {
	Command string `json:"command"`
	PID     int    `json:"pid"`
	// Client is what the driver said it is: name, library and version.
	Client string `json:"client,omitempty"`
	// Measured is false when the process could not be read after idle
	// close (it had ended, or there is no /proc here); Err says why.
	Measured bool          `json:"measured"`
	Err      string        `json:"err,omitempty"`
	Before   ProcessCounts `json:"before"`
	After    ProcessCounts `json:"after"`
	// Broken is the protocol error that ended the driver (it crashed,
	// hung, printed what is not a message...), "" while it kept to the
	// protocol.
	Broken string `json:"broken,omitempty"`
	// Stderr is the end of what the driver wrote on its stderr.
	Stderr string `json:"stderr,omitempty"`
}

// HeldBeforeIdleClose is the process's descriptors and the client's
// goroutines just before the servers closed idle connections.
type HeldBeforeIdleClose struct {
	FDsMeasured bool `json:"fds_measured"`
	FDs         int  `json:"fds"`
	// Goroutines is the goroutines carrying the run's label (see
	// LeakFinderLabels) still running then; -1 when unreadable.
	Goroutines int `json:"goroutines"`
}

// BeyondPool counts, over every service, the connections held because
// they were idle beyond the declared pool.
func (l LeakRecord) BeyondPool() int {
	n := 0
	for _, sc := range l.ServerConns {
		for _, g := range sc.Held {
			if g.Reason == HeldBeyondPool {
				n += g.Count
			}
		}
	}
	return n
}

// Resource names what a run's ceiling watches.
type Resource string

// Resources the runner watches (see WithFDCeiling, WithGoroutineCeiling).
const (
	ResourceFDs        Resource = "fds"        // this process's open file descriptors
	ResourceGoroutines Resource = "goroutines" // goroutines, as Sample.Goroutines counts them
)

// EarlyStop records that the runner stopped starting calls before the
// workload's end because the process passed a ceiling: the client was
// piling up descriptors or goroutines fast enough to take the harness
// down with it. The run was torn down and measured as usual.
type EarlyStop struct {
	At       time.Duration `json:"at"` // since the workload started
	Resource Resource      `json:"resource"`
	Above    int           `json:"above"`   // above the baseline, at the sample that passed the ceiling
	Ceiling  int           `json:"ceiling"` // above the baseline
	Calls    int64         `json:"calls"`   // recorded by then
}

// History is everything a run recorded. Checks judge it alone, so a saved
// history can be loaded and judged again.
type History struct {
	Version     int       `json:"version"`
	Scenario    string    `json:"scenario"`
	Seed        int64     `json:"seed"`
	Environment string    `json:"environment"`
	Started     time.Time `json:"started"`
	// Elapsed is from the workload start to the end of the last call.
	Elapsed  time.Duration `json:"elapsed"`
	Workload Workload      `json:"workload"`
	Profile  Profile       `json:"profile"`
	// Family and Proves are the scenario's, as Certify ran it (for the
	// reports of a history judged again).
	Family string `json:"family,omitempty"`
	Proves string `json:"proves,omitempty"`
	// Checks are the checks Certify judged the run with, so that a saved
	// history is judged again from itself alone (Rejudge); empty for a
	// history of Run, whose caller picks the checks.
	Checks Checks `json:"checks,omitempty"`
	// Services are the services the workload drove, in a stable order.
	Services        []string      `json:"services"`
	RequestIDPrefix string        `json:"request_id_prefix"`
	Watchdog        time.Duration `json:"watchdog"`
	// CPUs is the number of CPUs the samples' CPU times are spread over.
	CPUs int `json:"cpus,omitempty"`
	// Protocol is what the services offered the client: ProtocolHTTP1 or
	// ProtocolHTTP2 (the steps at offset 0 say whether they could).
	Protocol string `json:"protocol"`

	Calls      []CallRecord `json:"calls"`
	ErrorTexts []string     `json:"error_texts,omitempty"`
	// Dropped counts open-loop calls not started because in-flight was at its cap.
	Dropped int64 `json:"dropped"`
	// AbandonedAtEnd counts hung calls whose goroutine was still running when the run ended.
	AbandonedAtEnd int `json:"abandoned_at_end"`
	// StoppedEarly is set when the run stopped starting calls at a ceiling.
	StoppedEarly *EarlyStop `json:"stopped_early,omitempty"`

	Steps   []StepRecord `json:"steps,omitempty"`
	Samples []Sample     `json:"samples,omitempty"`

	// ServerAfterRun is each service's truth right after the workload ended.
	ServerAfterRun map[string]ServerTruth `json:"server_after_run,omitempty"`
	Teardown       []TeardownCall         `json:"teardown,omitempty"`
	Leaks          LeakRecord             `json:"leaks"`
}

// RequestID is the X-Request-ID the workload sent with call seq.
func (h *History) RequestID(seq uint32) string { return requestID(h.RequestIDPrefix, seq) }

// OrderID is the order id the workload charged with call seq.
func (h *History) OrderID(seq uint32) string { return orderID(h.RequestIDPrefix, seq) }

// ErrorText is the error text of a call, "" when it had none.
func (h *History) ErrorText(c CallRecord) string {
	switch {
	case c.Err == 0:
		return ""
	case c.Err == errTextDropped:
		return "(error text not kept: too many distinct errors)"
	case int(c.Err) <= len(h.ErrorTexts):
		return h.ErrorTexts[c.Err-1]
	}
	return ""
}

// CountClass counts calls of one error class.
func (h *History) CountClass(c ErrorClass) int {
	n := 0
	for i := range h.Calls {
		if h.Calls[i].Class == c {
			n++
		}
	}
	return n
}

func requestID(prefix string, seq uint32) string {
	return prefix + "-" + strconv.FormatUint(uint64(seq), 10)
}

func orderID(prefix string, seq uint32) string {
	return prefix + "-order-" + strconv.FormatUint(uint64(seq), 10)
}

// Save writes the history as JSON.
func (h *History) Save(w io.Writer) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("saving history of %q: %w", h.Scenario, err)
	}
	return nil
}

// SaveCompressed writes the history as gzip-compressed JSON, as report
// folders keep it: a run's calls and the servers' request log repeat the
// same field names and routes, which compress about tenfold.
func (h *History) SaveCompressed(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := h.Save(zw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("saving history of %q: %w", h.Scenario, err)
	}
	return nil
}

// LoadHistory reads a history written by Save or SaveCompressed (it
// tells them apart by gzip's magic bytes).
func LoadHistory(r io.Reader) (*History, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("loading history: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	var h History
	if err := json.NewDecoder(r).Decode(&h); err != nil {
		return nil, fmt.Errorf("loading history: %w", err)
	}
	if h.Version != HistoryVersion {
		return nil, fmt.Errorf("loading history: version %d, this poolproof reads %d: %w", h.Version, HistoryVersion, ErrHistoryVersion)
	}
	return &h, nil
}

// CPUShares are the shares of the machine's CPU that this process (self)
// and the other processes (others) used between offsets from and to of
// the run, from the samples nearest inside them (see cpuload.Shares); ok
// is false when the samples carry no CPU time or the span holds fewer
// than two.
func (h *History) CPUShares(from, to time.Duration) (self, others float64, ok bool) {
	first, last := -1, -1
	for i, s := range h.Samples {
		at := time.Duration(s.At)
		if at < from || at > to || s.CPUBusyMs == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	if first < 0 || last <= first {
		return 0, 0, false
	}
	a, b := h.Samples[first], h.Samples[last]
	return cpuload.Shares(cpuload.Reading{BusyMs: a.CPUBusyMs, SelfMs: a.CPUSelfMs}, cpuload.Reading{BusyMs: b.CPUBusyMs, SelfMs: b.CPUSelfMs},
		time.Duration(b.At-a.At).Milliseconds(), h.CPUs)
}
