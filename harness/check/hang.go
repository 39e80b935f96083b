package check

import (
	"fmt"
	"github.com/poolproof/poolproof/harness"
	"time"
)

// NoHang fails when any call did not return within the watchdog bound
// (the declared request timeout x 2 + 1s by default): a client must give up
// on its own, whatever the network does.
type NoHang struct{}

func (NoHang) ID() string { return IDNoHang }

func (c NoHang) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "calls")
	if len(h.Calls) == 0 {
		return v.NotApplicable("no calls were made")
	}
	hung := 0
	var first *harness.CallRecord
	for i := range h.Calls {
		if h.Calls[i].Class == harness.ClassHang {
			hung++
			if first == nil {
				first = &h.Calls[i]
			}
		}
	}
	if hung == 0 {
		return v.Pass(0, 0, fmt.Sprintf("all %d calls returned within the watchdog (%v)", len(h.Calls), h.Watchdog))
	}
	return v.Fail(float64(hung), 0, fmt.Sprintf("%d of %d calls hung: no return within the watchdog (%v), first %s %s (request id %s) at %v; %d call goroutines were still running when the run ended",
		hung, len(h.Calls), h.Watchdog, first.Service, first.Op, h.RequestID(first.Seq), time.Duration(first.Start).Round(time.Millisecond), h.AbandonedAtEnd))
}
