package scenarios

import (
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

// abandonDelay is how long inventory takes to answer in abandoned-work:
// ten times longer than its callers wait, so that a request left running
// when its caller gives up is seen at the server long after (past the
// check's grace), while a cancelled one ends at once.
const abandonDelay = time.Second

// giveUpEarly: every caller of abandoned-work cancels its call after
// 100ms, whatever the client's own timeout. A cancellation, not a
// deadline: a caller that walks away says nothing about the service, so a
// breaker rightly ignores it, while a run of deadlines would open it and
// leave no request at the server to judge.
var giveUpEarly = harness.CallerLimits{CancelShare: 1, CancelAfter: ms(100)}

// abandonedWork is its own scenario rather than a step of pool-exhaustion
// or blackhole: a blackhole holds the answers in the proxy, so the server
// has finished every request and sees no work go on; pool-exhaustion's
// answers come before any caller gives up, and its 96 callers over the
// pool make pool.bound fail an unlimited client before any work is
// abandoned. Here 12 callers (under any declared pool) keep giving up, so
// only work left behind can pile up at the server.
func abandonedWork(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: AbandonedWork,
		Proves: "when inventory is slower than its callers wait and every caller cancels its call after 100ms, the client stops each request it was told to give up on: " +
			"the server never runs more requests than the declared pool allows, and the client returns to each caller on time",
		Family:   harness.FamilyTimeout,
		Seed:     seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(1500), Workers: 12, Mix: inventory, Caller: giveUpEarly},
		Steps: []harness.Step{
			{At: 0, Label: "inventory answers after 1s", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "slow", Kind: fakeservers.FaultDelay, Route: itemsRoute, Method: "GET", Delay: fakeservers.Duration(abandonDelay)})},
		},
		Checks: checks(check.AbandonedWork{}, check.CallerDeadline{}),
	}
}
