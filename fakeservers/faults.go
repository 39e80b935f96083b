package fakeservers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrInvalidFault is wrapped by every error that rejects a fault; the message
// names the offending field, e.g. "faults[0].status: ...".
var ErrInvalidFault = errors.New("invalid fault")

// faultKinds lists the kinds in the order their labels are joined, with the
// bit each sets in a request record.
var faultKinds = []string{FaultDelay, FaultStatus, FaultSlowBody, FaultCutBody, FaultProcessThenFail, FaultCloseAfterHeaders}

func faultBit(kind string) uint8 {
	return 1 << uint8(slices.Index(faultKinds, kind))
}

func faultLabel(bits uint8) string {
	switch bits {
	case 0:
		return ""
	case faultBit(FaultStatus):
		return FaultStatus // the common case, without building a string
	}
	var parts []string
	for i, k := range faultKinds {
		if bits&(1<<uint8(i)) != 0 {
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, "+")
}

var faultStatuses = []int{429, 500, 502, 503, 504}

var faultMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}

// validateFaults checks every fault against the service's routes; the first
// problem is returned, naming the field as faults[i].<json name>.
func validateFaults(rs []route, faults []Fault) error {
	for i := range faults {
		if err := validateFault(rs, &faults[i]); err != nil {
			return fmt.Errorf("%w: faults[%d].%w", ErrInvalidFault, i, err)
		}
	}
	return nil
}

func validateFault(rs []route, f *Fault) error {
	if !slices.Contains(faultKinds, f.Kind) {
		if f.Kind == "" {
			return fmt.Errorf("kind: missing; want one of %s", strings.Join(faultKinds, ", "))
		}
		return fmt.Errorf("kind: %q is not one of %s", f.Kind, strings.Join(faultKinds, ", "))
	}
	if f.Probability < 0 || f.Probability > 1 || f.Probability != f.Probability {
		return fmt.Errorf("probability: must be in [0,1] (0 means always), got %v", f.Probability)
	}
	if f.Method != "" && !slices.Contains(faultMethods, f.Method) {
		return fmt.Errorf("method: %q is not one of %s (upper case)", f.Method, strings.Join(faultMethods, ", "))
	}
	if f.Route != "" {
		var patterns []string
		found, methodOK := false, f.Method == ""
		for _, r := range rs {
			patterns = append(patterns, r.pattern)
			if r.pattern == f.Route {
				found = true
				methodOK = methodOK || r.method == f.Method
			}
		}
		if !found {
			return fmt.Errorf("route: %q is not a route of this service; want one of %s", f.Route, strings.Join(slices.Compact(patterns), ", "))
		}
		if !methodOK {
			return fmt.Errorf("method: %s is not served on %s", f.Method, f.Route)
		}
	}
	needStatus := f.Kind == FaultStatus || (f.Kind == FaultProcessThenFail && f.Then == ThenStatus)
	switch {
	case f.Status != 0 && !needStatus:
		return fmt.Errorf("status: only for kind %s, or %s with then %q", FaultStatus, FaultProcessThenFail, ThenStatus)
	case f.Status == 0 && f.Kind == FaultStatus:
		return fmt.Errorf("status: missing; want one of %s", joinInts(faultStatuses))
	case f.Status != 0 && !slices.Contains(faultStatuses, f.Status):
		return fmt.Errorf("status: %d is not one of %s", f.Status, joinInts(faultStatuses))
	}
	if f.RetryAfter != "" {
		if !needStatus {
			return fmt.Errorf("retry_after: only with a status answer (kind %s, or %s with then %q)", FaultStatus, FaultProcessThenFail, ThenStatus)
		}
		if n, err := strconv.Atoi(f.RetryAfter); err == nil {
			if n < 0 {
				return fmt.Errorf("retry_after: %q must not be negative", f.RetryAfter)
			}
		} else if _, err := http.ParseTime(f.RetryAfter); err != nil {
			return fmt.Errorf("retry_after: %q is neither seconds nor an HTTP-date", f.RetryAfter)
		}
	}
	switch {
	case f.Delay < 0:
		return fmt.Errorf("delay: must not be negative, got %s", f.Delay.Std())
	case f.Kind == FaultDelay && f.Delay == 0:
		return errors.New(`delay: missing; want a duration such as "250ms"`)
	case f.Kind != FaultDelay && f.Delay != 0:
		return fmt.Errorf("delay: only for kind %s (add a separate delay fault)", FaultDelay)
	}
	switch {
	case f.BytesPerSecond < 0:
		return fmt.Errorf("bytes_per_second: must not be negative, got %d", f.BytesPerSecond)
	case f.Kind == FaultSlowBody && f.BytesPerSecond == 0:
		return errors.New("bytes_per_second: missing; want a rate > 0")
	case f.Kind != FaultSlowBody && f.BytesPerSecond != 0:
		return fmt.Errorf("bytes_per_second: only for kind %s", FaultSlowBody)
	}
	switch {
	case f.CutAfterBytes < 0:
		return fmt.Errorf("cut_after_bytes: must not be negative, got %d", f.CutAfterBytes)
	case f.Kind != FaultCutBody && f.CutAfterBytes != 0:
		return fmt.Errorf("cut_after_bytes: only for kind %s", FaultCutBody)
	}
	switch {
	case f.Kind != FaultProcessThenFail && f.Then != "":
		return fmt.Errorf("then: only for kind %s", FaultProcessThenFail)
	case f.Kind == FaultProcessThenFail && f.Then != "" && f.Then != ThenReset && f.Then != ThenStatus:
		return fmt.Errorf("then: %q is not one of %s, %s", f.Then, ThenReset, ThenStatus)
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// decodeFaults reads one Fault object or an array of them, rejecting unknown
// fields and naming the element that is wrong.
func decodeFaults(r io.Reader) ([]Fault, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrInvalidFault, err)
	}
	raw = bytes.TrimSpace(raw)
	var elems []json.RawMessage
	switch {
	case len(raw) == 0:
		return nil, fmt.Errorf("%w: faults: empty body; want a fault object or an array of them", ErrInvalidFault)
	case raw[0] == '{':
		elems = []json.RawMessage{raw}
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, fmt.Errorf("%w: faults: %w", ErrInvalidFault, err)
		}
	default:
		return nil, fmt.Errorf("%w: faults: want a fault object or an array of them", ErrInvalidFault)
	}
	faults := make([]Fault, len(elems))
	for i, e := range elems {
		dec := json.NewDecoder(bytes.NewReader(e))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&faults[i]); err != nil {
			return nil, fmt.Errorf("%w: faults[%d]%s", ErrInvalidFault, i, describeJSONError(err))
		}
	}
	return faults, nil
}

// describeJSONError turns encoding/json errors into ".field: problem" (or
// ": problem" when no field is known).
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf(".%s: want a %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if field, ok := strings.CutPrefix(msg, "unknown field "); ok {
		name, _ := strconv.Unquote(field)
		if name == "" {
			name = field
		}
		return fmt.Sprintf(".%s: unknown field", name)
	}
	return ": " + msg
}

// faultSet is an immutable set of faults, swapped atomically as a whole.
type faultSet struct {
	faults []Fault
	// needDraw is true when some fault has a probability strictly between 0
	// and 1, i.e. when the seeded source must be consulted.
	needDraw bool
}

func newFaultSet(faults []Fault) *faultSet {
	fs := &faultSet{faults: slices.Clone(faults)}
	for _, f := range faults {
		if f.Probability > 0 && f.Probability < 1 {
			fs.needDraw = true
		}
	}
	return fs
}

// faultDice is the seeded source every fault draw comes from, so the same
// seed and the same sequence of requests give the same faults.
type faultDice struct {
	mu    sync.Mutex
	seed  int64
	rng   *rand.Rand
	rolls uint32 // draws taken since the last (re)seed
}

const faultStream = 0x6661756c74 // "fault": keeps fault draws apart from latency jitter

func newFaultDice(seed int64) *faultDice {
	return &faultDice{seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), faultStream))}
}

// reseed starts the draws again from seed.
func (d *faultDice) reseed(seed int64) {
	d.mu.Lock()
	d.seed = seed
	d.rng = rand.New(rand.NewPCG(uint64(seed), faultStream))
	d.rolls = 0
	d.mu.Unlock()
}

// decision is what the faults do to one request.
type decision struct {
	delay  Duration
	shape  *Fault // the first firing fault that is not a delay
	faults uint8  // bits of every fault kind that fired
	// draw is the 1-based position, since the last reseed, of the first
	// draw this request took; 0 when it took none.
	draw uint32
}

// decide walks the faults in order. Every matching fault with a probability
// in (0,1) consumes exactly one draw, whether or not an earlier fault fired,
// so the sequence of draws depends only on the sequence of requests.
func (fs *faultSet) decide(dice *faultDice, routeIdx int8, rs []route, method string) decision {
	var d decision
	if routeIdx < 0 {
		return d
	}
	pattern := rs[routeIdx].pattern
	locked := false
	for i := range fs.faults {
		f := &fs.faults[i]
		if (f.Route != "" && f.Route != pattern) || (f.Method != "" && f.Method != method) {
			continue
		}
		fire := true
		if f.Probability > 0 && f.Probability < 1 {
			if !locked {
				dice.mu.Lock()
				locked = true
				d.draw = dice.rolls + 1
			}
			dice.rolls++
			fire = dice.rng.Float64() < f.Probability
		}
		if !fire {
			continue
		}
		if f.Kind == FaultDelay {
			d.delay += f.Delay
			d.faults |= faultBit(FaultDelay)
			continue
		}
		if d.shape == nil {
			d.shape = f
			d.faults |= faultBit(f.Kind)
		}
	}
	if locked {
		dice.mu.Unlock()
	}
	return d
}

func (f *Fault) label() string {
	if f.Name != "" {
		return f.Name
	}
	return f.Kind
}
