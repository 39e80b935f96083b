package harness

import (
	"fmt"
	"time"
)

// NoHangCheck fails when any call did not return within the watchdog bound
// (the declared request timeout x 2 + 1s by default): a client must give up
// on its own, whatever the network does.
type NoHangCheck struct{}

func (NoHangCheck) ID() string { return CheckNoHang }

func (c NoHangCheck) Judge(h *History) Verdict {
	v := verdict(c.ID(), h, "calls")
	if len(h.Calls) == 0 {
		return v.notApplicable("no calls were made")
	}
	hung := 0
	var first *CallRecord
	for i := range h.Calls {
		if h.Calls[i].Class == ClassHang {
			hung++
			if first == nil {
				first = &h.Calls[i]
			}
		}
	}
	if hung == 0 {
		return v.pass(0, 0, fmt.Sprintf("all %d calls returned within the watchdog (%v)", len(h.Calls), h.Watchdog))
	}
	return v.fail(float64(hung), 0, fmt.Sprintf("%d of %d calls hung: no return within the watchdog (%v), first %s %s (request id %s) at %v; %d call goroutines were still running when the run ended",
		hung, len(h.Calls), h.Watchdog, first.Service, first.Op, h.RequestID(first.Seq), time.Duration(first.Start).Round(time.Millisecond), h.AbandonedAtEnd))
}
