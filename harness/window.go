package harness

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// Window is a span of the run (offsets from the workload start) during which
// a service had at least one fault applied.
type Window struct {
	Service string        `json:"service"`
	Start   time.Duration `json:"start"`
	End     time.Duration `json:"end"`
	// Closed is true when a step removed the last fault; false when the fault
	// lasted to the end of the run (End is then the run's end).
	Closed bool `json:"closed"`
	// HTTPFaults is true when the window included HTTP faults on the fake
	// server, so failed attempts reach the server and show in its truth;
	// proxy-level faults (toxics, a disabled proxy) may stop them earlier.
	HTTPFaults bool     `json:"http_faults"`
	Labels     []string `json:"labels,omitempty"`
}

// Contains reports whether offset t lies in [Start, End).
func (w Window) Contains(t time.Duration) bool { return t >= w.Start && t < w.End }

// Duration is the window's length.
func (w Window) Duration() time.Duration { return w.End - w.Start }

func (w Window) String() string {
	end := "end of run"
	if w.Closed {
		end = FormatDuration(w.End)
	}
	return fmt.Sprintf("%s fault %s..%s", w.Service, FormatDuration(w.Start), end)
}

// FaultWindows derives, from the recorded nemesis steps (their actual start
// times), the spans during which service had a fault. A window opens at the
// first step that puts a fault on the service (add_toxic, disable_proxy,
// set_http_faults, set_keepalive with any limit) and closes at the step that
// removes the last one (remove_toxic of every added toxic, enable_proxy,
// clear_http_faults, set_keepalive with no limits). A remove_toxic naming a
// toxic that was never added removes every toxic: the scenario meant to end
// the fault, and a window held open to the end of the run would hide the
// recovery. Steps that failed or were not reached changed nothing and are
// skipped.
func FaultWindows(h *History, service string) []Window {
	steps := make([]StepRecord, 0, len(h.Steps))
	for _, s := range h.Steps {
		if s.Step.Action.Service == service && s.Applied() {
			steps = append(steps, s)
		}
	}
	slices.SortStableFunc(steps, func(a, b StepRecord) int { return cmp.Compare(a.Started, b.Started) })

	var (
		out       []Window
		cur       *Window
		toxics    = map[string]bool{}
		disabled  bool
		httpFault bool
		keepAlive bool
	)
	active := func() bool { return len(toxics) > 0 || disabled || httpFault || keepAlive }
	for _, s := range steps {
		a := s.Step.Action
		switch a.Kind {
		case ActionAddToxic:
			name := ""
			if a.Toxic != nil {
				name = a.Toxic.Name
				if name == "" {
					name = a.Toxic.Type + "_" + a.Toxic.Stream
				}
			}
			toxics[name] = true
		case ActionRemoveToxic:
			if toxics[a.ToxicName] {
				delete(toxics, a.ToxicName)
			} else {
				clear(toxics)
			}
		case ActionDisableProxy:
			disabled = true
		case ActionEnableProxy:
			disabled = false
		case ActionSetHTTPFaults:
			httpFault = len(a.HTTPFaults) > 0
		case ActionClearHTTPFaults:
			httpFault = false
		case ActionSetKeepAlive:
			keepAlive = a.KeepAlive != nil && *a.KeepAlive != (fakeservers.KeepAlive{})
		default:
			continue
		}
		switch {
		case cur == nil && active():
			cur = &Window{Service: service, Start: s.Started}
			fallthrough
		case cur != nil:
			cur.Labels = append(cur.Labels, stepLabel(s.Step))
			if httpFault {
				cur.HTTPFaults = true
			}
			if !active() {
				cur.End, cur.Closed = s.Started, true
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	if cur != nil {
		cur.End = max(h.End(), cur.Start)
		out = append(out, *cur)
	}
	return out
}

func stepLabel(s Step) string {
	if s.Label != "" {
		return s.Label
	}
	return s.Action.Kind + " " + s.Action.Service
}

// End is the offset of the end of the run: the end of the last call, or
// the workload's duration when no call was recorded.
func (h *History) End() time.Duration {
	end := h.Elapsed
	for i := range h.Calls {
		end = max(end, time.Duration(h.Calls[i].End))
	}
	if end == 0 {
		end = h.Workload.Duration
	}
	return end
}

// FormatDuration prints d for a reason or a label: to the microsecond below
// 1ms, to 100µs below 1s, to the millisecond above.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Millisecond && d > -time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second && d > -time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
