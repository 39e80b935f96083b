package harness

import (
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

// Nemesis action kinds.
const (
	ActionAddToxic        = "add_toxic"
	ActionRemoveToxic     = "remove_toxic"
	ActionDisableProxy    = "disable_proxy" // drops every live connection and refuses new ones
	ActionEnableProxy     = "enable_proxy"
	ActionSetHTTPFaults   = "set_http_faults"
	ActionClearHTTPFaults = "clear_http_faults"
	ActionSetKeepAlive    = "set_keepalive"
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
}

// Step is one timed action of a nemesis schedule: at At after the workload
// starts, do Action.
type Step struct {
	At     time.Duration `json:"at"`
	Label  string        `json:"label"` // what a person sees in progress and timelines, e.g. "latency 500ms on inventory"
	Action Action        `json:"action"`
}

// StepRecord is what actually happened when the runner executed a Step.
type StepRecord struct {
	Step    Step          `json:"step"`
	Started time.Duration `json:"started"` // since the workload started
	Ended   time.Duration `json:"ended"`
	Err     string        `json:"err,omitempty"`
}
