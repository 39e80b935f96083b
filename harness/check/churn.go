package check

import (
	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// connectionFaultWindows are service's fault windows that may cost the
// client its connections: every window but those whose faults all answer
// whole (a status, a delay, a commit then a status). Under those the server
// keeps every connection open and each answer ends cleanly, so a client
// that opens new connections then, a new one per retried 5xx, churns as it
// would in steady state.
func connectionFaultWindows(h *harness.History, service string) []harness.Window {
	var out []harness.Window
	for _, w := range harness.FaultWindows(h, service) {
		if !answersWhole(h, w) {
			out = append(out, w)
		}
	}
	return out
}

// answersWhole reports whether every step that shaped window w set HTTP
// faults that answer whole or cleared them.
func answersWhole(h *harness.History, w harness.Window) bool {
	for _, s := range h.Steps {
		a := s.Step.Action
		if a.Service != w.Service || !s.Applied() || s.Started < w.Start || (w.Closed && s.Started > w.End) {
			continue
		}
		switch a.Kind {
		case harness.ActionClearHTTPFaults:
		case harness.ActionSetHTTPFaults:
			for _, f := range a.HTTPFaults {
				whole := f.Kind == fakeservers.FaultStatus || f.Kind == fakeservers.FaultDelay ||
					(f.Kind == fakeservers.FaultProcessThenFail && f.Then == fakeservers.ThenStatus)
				if !whole {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}
