package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Status is a verdict's outcome.
type Status string

// Verdict statuses. A check that cannot be judged from the history (no
// server-side truth, no fd counts on this OS) is not applicable, never passed.
const (
	StatusPass          Status = "pass"
	StatusFail          Status = "fail"
	StatusNotApplicable Status = "not_applicable"
)

// Verdict is one check's judgement of one history.
type Verdict struct {
	Check    string  `json:"check"`
	Scenario string  `json:"scenario"`
	Seed     int64   `json:"seed"`
	Measured float64 `json:"measured"`
	Bound    float64 `json:"bound"`
	Unit     string  `json:"unit,omitempty"` // e.g. "goroutines", "fds", "connections"
	Status   Status  `json:"status"`
	Reason   string  `json:"reason"`
}

// String prints the verdict on one line with everything needed to replay
// it: status, check, scenario, seed, measured value and bound, and why.
func (v Verdict) String() string {
	unit := ""
	if v.Unit != "" {
		unit = " " + v.Unit
	}
	return fmt.Sprintf("%s %s scenario=%s seed=%d measured=%s%s bound=%s%s: %s",
		strings.ToUpper(string(v.Status)), v.Check, v.Scenario, v.Seed,
		formatNumber(v.Measured), unit, formatNumber(v.Bound), unit, v.Reason)
}

// Passed reports a pass.
func (v Verdict) Passed() bool { return v.Status == StatusPass }

func formatNumber(f float64) string {
	if f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

// Check judges a history. Judge must use only the history, so that a
// verdict can be recomputed from a saved history. A check is data: its
// exported fields are its bounds, zero meaning "from the contract the
// history declares", so a scenario holding it saves and loads as JSON (see
// RegisterCheck).
type Check interface {
	ID() string
	Judge(h *History) Verdict
}

// Judge runs every check on h. A check that panics (a bug in the check, or
// a malformed history loaded from disk) gets a failed verdict that names it,
// and the other checks still run: one broken judge never takes the whole
// certification down.
func Judge(h *History, checks ...Check) []Verdict {
	out := make([]Verdict, 0, len(checks))
	for _, c := range checks {
		out = append(out, judgeOne(h, c))
	}
	return out
}

func judgeOne(h *History, c Check) (v Verdict) {
	id := "<nil check>"
	if c != nil {
		id = c.ID()
	}
	defer func() {
		if p := recover(); p != nil {
			v = NewVerdict(id, h, "").Fail(1, 0, fmt.Sprintf("the check panicked while judging this history (%v): a malformed history or a bug in the check; the other checks still ran", p))
		}
	}()
	if c == nil {
		return NewVerdict(id, h, "").Fail(1, 0, "a nil check was given: leave it out of the scenario")
	}
	return c.Judge(h)
}

// NewVerdict starts the verdict of check id on h; Pass, Fail or
// NotApplicable completes it.
func NewVerdict(id string, h *History, unit string) Verdict {
	return Verdict{Check: id, Scenario: h.Scenario, Seed: h.Seed, Unit: unit}
}

// Pass returns v judged passed.
func (v Verdict) Pass(measured, bound float64, reason string) Verdict {
	v.Status, v.Measured, v.Bound, v.Reason = StatusPass, measured, bound, reason
	return v
}

// Fail returns v judged failed.
func (v Verdict) Fail(measured, bound float64, reason string) Verdict {
	v.Status, v.Measured, v.Bound, v.Reason = StatusFail, measured, bound, reason
	return v
}

// NotApplicable returns v judged not applicable: the history cannot say.
func (v Verdict) NotApplicable(reason string) Verdict {
	v.Status, v.Reason = StatusNotApplicable, reason
	return v
}

// ErrUnknownCheck is returned when a saved scenario names a check id that
// no RegisterCheck made known.
var ErrUnknownCheck = errors.New("unknown check")

var checkRegistry = struct {
	sync.RWMutex
	byID map[string]reflect.Type
}{byID: map[string]reflect.Type{}}

// RegisterCheck makes a kind of check loadable from JSON under its id. The
// checks of harness/check register themselves; a team's own check
// registers in its package's init. proto must be a struct value (not a
// pointer); registering an id twice panics, as two judges for one id
// would make saved verdicts ambiguous.
func RegisterCheck(proto Check) {
	t := reflect.TypeOf(proto)
	if t == nil || t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("harness.RegisterCheck(%T): want a struct value", proto))
	}
	checkRegistry.Lock()
	defer checkRegistry.Unlock()
	id := proto.ID()
	if prev, ok := checkRegistry.byID[id]; ok && prev != t {
		panic(fmt.Sprintf("harness.RegisterCheck: id %q is registered twice (%v and %v)", id, prev, t))
	}
	checkRegistry.byID[id] = t
}

// RegisteredChecks lists the ids RegisterCheck made known, sorted.
func RegisteredChecks() []string {
	checkRegistry.RLock()
	defer checkRegistry.RUnlock()
	ids := make([]string, 0, len(checkRegistry.byID))
	for id := range checkRegistry.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Checks is a scenario's checks. It saves as a JSON array of objects, each
// the check's id and its fields, e.g. {"id":"pool.bound","max_conns":8},
// and loads them back through RegisterCheck's registry, refusing an unknown
// id or field.
type Checks []Check

// MarshalJSON writes each check as {"id": ..., its fields...}.
func (cs Checks) MarshalJSON() ([]byte, error) {
	out := make([]json.RawMessage, 0, len(cs))
	for i, c := range cs {
		if c == nil {
			return nil, fmt.Errorf("checks[%d] is nil", i)
		}
		fields, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("checks[%d] (%s): %w", i, c.ID(), err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(fields, &m); err != nil || m == nil {
			m = map[string]json.RawMessage{}
		}
		id, _ := json.Marshal(c.ID())
		m["id"] = id
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (cs *Checks) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return fmt.Errorf("checks: want an array of {\"id\": ...} objects: %w", err)
	}
	out := make(Checks, 0, len(raws))
	for i, raw := range raws {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("checks[%d]: want an object with an \"id\": %w", i, err)
		}
		var id string
		if err := json.Unmarshal(m["id"], &id); err != nil || id == "" {
			return fmt.Errorf("checks[%d]: \"id\" is missing or not a string: name the check, e.g. \"pool.bound\"", i)
		}
		checkRegistry.RLock()
		t, ok := checkRegistry.byID[id]
		checkRegistry.RUnlock()
		if !ok {
			return fmt.Errorf("checks[%d]: %w %q: use one of %v", i, ErrUnknownCheck, id, RegisteredChecks())
		}
		delete(m, "id")
		fields, _ := json.Marshal(m)
		v := reflect.New(t)
		dec := json.NewDecoder(bytes.NewReader(fields))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v.Interface()); err != nil {
			return fmt.Errorf("checks[%d] (%s): %w", i, id, err)
		}
		out = append(out, v.Elem().Interface().(Check))
	}
	*cs = out
	return nil
}
