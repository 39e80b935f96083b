package harness

import (
	"encoding/json"
	"math"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// Toxiproxy toxic types.
const (
	ToxicLatency   = "latency"    // attributes: latency, jitter (ms)
	ToxicBandwidth = "bandwidth"  // attributes: rate (KB/s)
	ToxicSlowClose = "slow_close" // attributes: delay (ms)
	ToxicTimeout   = "timeout"    // attributes: timeout (ms; 0 = hold the data forever: a blackhole)
	ToxicResetPeer = "reset_peer" // attributes: timeout (ms)
	ToxicSlicer    = "slicer"     // attributes: average_size, size_variation (bytes), delay (us)
	ToxicLimitData = "limit_data" // attributes: bytes
)

// Toxic streams.
const (
	Upstream   = "upstream"   // client -> server
	Downstream = "downstream" // server -> client
)

// Toxic is one Toxiproxy toxic as data.
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`   // Upstream or Downstream
	Toxicity   float32        `json:"toxicity"` // 0..1; drawn once per connection by Toxiproxy
	Attributes map[string]any `json:"attributes"`
}

// UnmarshalJSON reads a toxic saved as JSON. Toxiproxy's attributes are
// whole numbers for every toxic it ships; JSON has only floats, so a whole
// number is read back as the int64 the constructors write, and a scenario
// round-trips through JSON unchanged.
func (t *Toxic) UnmarshalJSON(b []byte) error {
	type plain Toxic
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	for k, v := range p.Attributes {
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			p.Attributes[k] = int64(f)
		}
	}
	*t = Toxic(p)
	return nil
}

// Nemesis action kinds.
const (
	ActionAddToxic        = "add_toxic"
	ActionRemoveToxic     = "remove_toxic"
	ActionDisableProxy    = "disable_proxy" // drops every live connection and refuses new ones
	ActionEnableProxy     = "enable_proxy"
	ActionSetHTTPFaults   = "set_http_faults"
	ActionClearHTTPFaults = "clear_http_faults"
	ActionSetKeepAlive    = "set_keepalive"
	// ActionSetProtocol sets what the service offers new connections:
	// Protocol HTTP/1.1 only, or h2 as well. Run applies it before the
	// client is built; a scenario rarely needs it.
	ActionSetProtocol = "set_protocol"
)

// Protocols a run is judged on.
const (
	ProtocolHTTP1 = "http/1.1"
	ProtocolHTTP2 = "h2"
	// ProtocolAsServed: the services are not fake services, so the run had
	// whatever protocol they negotiate.
	ProtocolAsServed = "as served"
)

// Action is one fault operation on one service, as data so that a scenario
// can be saved, printed and replayed.
type Action struct {
	Kind       string                 `json:"kind"`
	Service    string                 `json:"service"`
	Toxic      *Toxic                 `json:"toxic,omitempty"`       // ActionAddToxic
	ToxicName  string                 `json:"toxic_name,omitempty"`  // ActionRemoveToxic
	HTTPFaults []fakeservers.Fault    `json:"http_faults,omitempty"` // ActionSetHTTPFaults
	KeepAlive  *fakeservers.KeepAlive `json:"keepalive,omitempty"`   // ActionSetKeepAlive
	Protocol   string                 `json:"protocol,omitempty"`    // ActionSetProtocol: ProtocolHTTP1 or ProtocolHTTP2
}

// Step is one timed action of a nemesis schedule: at At after the workload
// starts, do Action.
type Step struct {
	At     time.Duration `json:"at"`
	Label  string        `json:"label"` // what a person sees in progress and timelines, e.g. "latency 500ms on inventory"
	Action Action        `json:"action"`
}

// StepOutcome is what became of a nemesis step.
type StepOutcome string

// Step outcomes. Only an applied step changed the environment; checks and
// fault windows skip the others.
const (
	// StepApplied: the fault driver carried the action out.
	StepApplied StepOutcome = "applied"
	// StepUnsupported: the environment cannot inject this kind of fault
	// (HTTP faults or keep-alive on a service that is not a poolproof fake
	// service): the run is not judged against it, nothing failed.
	StepUnsupported StepOutcome = "unsupported"
	// StepFailed: the environment should have injected the fault and did not.
	StepFailed StepOutcome = "failed"
	// StepNotReached: the workload ended before the step's offset.
	StepNotReached StepOutcome = "not_reached"
)

// StepRecord is what actually happened when the runner executed a Step.
type StepRecord struct {
	Step    Step          `json:"step"`
	Started time.Duration `json:"started"` // since the workload started; -1 when not reached
	Ended   time.Duration `json:"ended"`
	Outcome StepOutcome   `json:"outcome"`
	Err     string        `json:"err,omitempty"` // why, when the outcome is not StepApplied
}

// Applied reports a step that changed the environment.
func (r StepRecord) Applied() bool { return r.Outcome == StepApplied }
