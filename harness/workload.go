package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// ErrInvalidWorkload is returned by Run for a workload it cannot run.
var ErrInvalidWorkload = errors.New("invalid workload")

// LoopMode is how the workload paces calls.
type LoopMode string

const (
	// ClosedLoop runs Workers workers, each issuing its next call when the
	// previous one ended (plus ThinkTime): the client sets the pace.
	ClosedLoop LoopMode = "closed"
	// OpenLoop issues calls at Rate per second whatever the client does, with
	// at most MaxInFlight at once; calls due while in-flight is at its cap are
	// dropped and counted (History.Dropped).
	OpenLoop LoopMode = "open"
)

// Mix weighs the operations across the three services. A zero weight leaves
// the service out of the run (no client is built for it).
type Mix struct {
	Inventory    int `json:"inventory"`    // GET /v1/items/{sku}
	Payment      int `json:"payment"`      // POST /v1/charges
	Notification int `json:"notification"` // POST /v1/notifications
}

func (m Mix) total() int { return m.Inventory + m.Payment + m.Notification }

// Workload says how the runner drives the client.
type Workload struct {
	Mode LoopMode `json:"mode"`
	// Duration is how long calls are started for.
	Duration time.Duration `json:"duration"`
	// MaxCalls, when > 0, ends the run after this many calls even before Duration.
	MaxCalls int `json:"max_calls,omitempty"`

	// Workers is the closed-loop concurrency.
	Workers int `json:"workers,omitempty"`
	// ThinkTime is the closed-loop pause between a worker's calls, e.g. to
	// space calls just past a server idle timeout.
	ThinkTime time.Duration `json:"think_time,omitempty"`

	// Rate is the open-loop target in calls per second.
	Rate float64 `json:"rate,omitempty"`
	// MaxInFlight bounds the open-loop calls in flight.
	MaxInFlight int `json:"max_in_flight,omitempty"`

	Mix Mix `json:"mix"`
	// KeyedCharges sends an Idempotency-Key with every charge. By default
	// charges carry none, so a retried charge the server already processed
	// shows up as a duplicate charge for its order id.
	KeyedCharges bool `json:"keyed_charges,omitempty"`
	// SKUs is how many distinct items the inventory reads spread over (default 100).
	SKUs int `json:"skus,omitempty"`
	// Caller makes the callers give up on a seeded share of calls (a
	// deadline, a cancellation); zero: they wait for every call.
	Caller CallerLimits `json:"caller,omitzero"`
}

// DefaultWorkload is a closed loop of 8 workers for 2s over an even mix.
func DefaultWorkload() Workload {
	return Workload{Mode: ClosedLoop, Duration: 2 * time.Second, Workers: 8, Mix: Mix{Inventory: 1, Payment: 1, Notification: 1}, SKUs: 100}
}

func (w Workload) withDefaults() Workload {
	if w.Mode == "" {
		w.Mode = ClosedLoop
	}
	if w.Mix.total() == 0 {
		w.Mix = Mix{Inventory: 1, Payment: 1, Notification: 1}
	}
	if w.SKUs <= 0 {
		w.SKUs = 100
	}
	if w.Mode == ClosedLoop && w.Workers == 0 {
		w.Workers = 1
	}
	if w.Mode == OpenLoop && w.MaxInFlight == 0 {
		w.MaxInFlight = 64
	}
	return w
}

func (w Workload) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %w", ErrInvalidWorkload, &FieldError{Path: field, Problem: fmt.Sprintf(format, args...)})
	}
	switch {
	case w.Mode != ClosedLoop && w.Mode != OpenLoop:
		return bad("mode", "%q: use %q or %q", w.Mode, ClosedLoop, OpenLoop)
	case w.Duration <= 0:
		return bad("duration", "%v: set how long to run, e.g. 5s", w.Duration)
	case w.MaxCalls < 0:
		return bad("max_calls", "%d: use 0 for no limit", w.MaxCalls)
	case w.Mix.Inventory < 0 || w.Mix.Payment < 0 || w.Mix.Notification < 0:
		return bad("mix", "%+v: weights must be >= 0", w.Mix)
	case w.Mode == ClosedLoop && w.Workers < 1:
		return bad("workers", "%d: a closed loop needs at least 1 worker", w.Workers)
	case w.ThinkTime < 0:
		return bad("think_time", "%v must be >= 0", w.ThinkTime)
	case w.Mode == OpenLoop && w.Rate <= 0:
		return bad("rate", "%v: an open loop needs a target rate in calls per second", w.Rate)
	case w.Mode == OpenLoop && w.MaxInFlight < 1:
		return bad("max_in_flight", "%d: an open loop needs a cap >= 1", w.MaxInFlight)
	}
	return w.Caller.validate()
}

// Callers is the most calls the workload has running at once: its workers,
// or its open loop's in-flight cap.
func (w Workload) Callers() int {
	if w.Mode == OpenLoop {
		return w.MaxInFlight
	}
	return w.Workers
}

// UndeclaredPoolBound is the pool a client that declares no MaxConns is
// held to: twice its callers. A pool needs no more connections than
// callers, but a transport that dials for a waiting call while another
// call frees a connection (Go's does) keeps both; a pool that grows
// without bound (a new client per call) exceeds any such bound.
func UndeclaredPoolBound(w Workload) int { return 2*w.Callers() + 2 }

// services lists the services the mix drives, in a stable order.
func (w Workload) services() []string {
	var out []string
	if w.Mix.Inventory > 0 {
		out = append(out, fakeservers.Inventory)
	}
	if w.Mix.Payment > 0 {
		out = append(out, fakeservers.Payment)
	}
	if w.Mix.Notification > 0 {
		out = append(out, fakeservers.Notification)
	}
	return out
}

// plan turns a call number into a request. Every draw for call seq comes
// from a PCG seeded with (seed, seq), so a call's operation, item and amount
// depend only on the seed and its number, never on which worker took it or
// when: the same seed replays the same calls with the same request ids.
type plan struct {
	seed     uint64
	prefix   string
	mix      Mix
	total    int
	skus     int
	keyed    bool
	itemsURL string // inventory base + the item route up to its {sku} + "sku-"
	chargeTo string
	notifyTo string
}

func newPlan(seed int64, prefix string, w Workload, bases map[string]string) *plan {
	// Cut the item route where fakeservers' own router does: at its one parameter.
	itemsPath, _, _ := strings.Cut(fakeservers.RouteItem, "{")
	return &plan{
		seed:     uint64(seed),
		prefix:   prefix,
		mix:      w.Mix,
		total:    w.Mix.total(),
		skus:     w.SKUs,
		keyed:    w.KeyedCharges,
		itemsURL: strings.TrimRight(bases[fakeservers.Inventory], "/") + itemsPath + "sku-",
		chargeTo: strings.TrimRight(bases[fakeservers.Payment], "/") + fakeservers.RouteCharges,
		notifyTo: strings.TrimRight(bases[fakeservers.Notification], "/") + fakeservers.RouteNotifications,
	}
}

// draw returns the operation of call seq and a second draw for its parameters.
func (p *plan) draw(seq uint32) (Op, uint64) {
	src := rand.NewPCG(p.seed, uint64(seq))
	pick := int(src.Uint64() % uint64(p.total))
	param := src.Uint64()
	switch {
	case pick < p.mix.Inventory:
		return OpGetItem, param
	case pick < p.mix.Inventory+p.mix.Payment:
		return OpCreateCharge, param
	}
	return OpSendNotification, param
}

// request builds call seq.
func (p *plan) request(ctx context.Context, seq uint32, op Op, param uint64) (*http.Request, error) {
	var (
		req *http.Request
		err error
	)
	switch op {
	case OpGetItem:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, p.itemsURL+strconv.FormatUint(param%uint64(p.skus), 10), nil)
	case OpCreateCharge:
		body := make([]byte, 0, 96)
		body = append(body, `{"order_id":"`...)
		body = append(body, orderID(p.prefix, seq)...)
		body = append(body, `","amount":`...)
		body = strconv.AppendUint(body, 100+param%99900, 10)
		body = append(body, `,"currency":"EUR"}`...)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.chargeTo, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			if p.keyed {
				req.Header.Set(fakeservers.HeaderIdempotencyKey, p.prefix+"-key-"+strconv.FormatUint(uint64(seq), 10))
			}
		}
	case OpSendNotification:
		body := make([]byte, 0, 96)
		body = append(body, `{"recipient":"customer-`...)
		body = strconv.AppendUint(body, param%1000, 10)
		body = append(body, `","channel":"email","message":"order update"}`...)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.notifyTo, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	default:
		return nil, fmt.Errorf("call %d: unknown op %v", seq, op)
	}
	if err != nil {
		return nil, fmt.Errorf("building call %d (%v): %w", seq, op, err)
	}
	req.Header.Set(fakeservers.HeaderRequestID, requestID(p.prefix, seq))
	return req, nil
}

// requestIDPrefix is deterministic in the scenario and seed, so that a
// replay sends the same ids, and distinct across scenarios sharing a server.
func requestIDPrefix(scenario string, seed int64) string {
	var b strings.Builder
	b.WriteString("pp-")
	for _, r := range scenario {
		if b.Len() >= 35 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteByte('-')
	b.WriteString(strconv.FormatUint(uint64(seed), 36))
	return b.String()
}
