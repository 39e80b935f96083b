package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

// ErrUnknownScenario is wrapped by Lookup when no scenario has the name.
var ErrUnknownScenario = errors.New("unknown scenario")

// seed is every catalog scenario's own seed; Certify can override it.
const seed int64 = 20240601

// Scenario names, in Standard order.
const (
	Baseline              = "baseline"
	LatencySpike          = "latency-spike"
	ConnectionResets      = "connection-resets"
	Blackhole             = "blackhole"
	SlowBody              = "slow-body"
	ConnectNeverCompletes = "connect-never-completes"
	ServerErrorStorm      = "5xx-storm"
	Flaky5xx              = "flaky-5xx"
	RetryAfter429         = "429-retry-after"
	ProcessThenFail       = "process-then-fail"
	Restart               = "restart"
	KeepAliveRace         = "keepalive-race"
	PoolExhaustion        = "pool-exhaustion"
	FragmentedResponses   = "fragmented-responses"
	OneServiceDown        = "one-service-down"
	PoolIdleLifetime      = "pool-idle-lifetime"
	AbandonedWork         = "abandoned-work"
)

// builders make each scenario at full length (quick false) or shortened
// for Quick (quick true), in Standard order.
var builders = []struct {
	name  string
	quick bool // part of Quick
	build func(quick bool) harness.Scenario
}{
	{Baseline, true, baseline},
	{LatencySpike, false, latencySpike},
	{ConnectionResets, false, connectionResets},
	{Blackhole, true, blackhole},
	{SlowBody, false, slowBody},
	{ConnectNeverCompletes, false, connectNeverCompletes},
	{ServerErrorStorm, false, serverErrorStorm},
	{Flaky5xx, false, flaky5xx},
	{RetryAfter429, true, retryAfter429},
	{ProcessThenFail, true, processThenFail},
	{Restart, false, restart},
	{KeepAliveRace, false, keepAliveRace},
	{PoolExhaustion, true, poolExhaustion},
	{FragmentedResponses, false, fragmentedResponses},
	{OneServiceDown, false, oneServiceDown},
	{PoolIdleLifetime, false, poolIdleLifetime},
	{AbandonedWork, false, abandonedWork},
}

// Standard is the full certification catalog, in the order it runs.
func Standard() []harness.Scenario {
	out := make([]harness.Scenario, 0, len(builders))
	for _, b := range builders {
		out = append(out, b.build(false))
	}
	return out
}

// Quick is a subset of Standard with shorter durations, for a fast first
// answer; a client is certified by Standard only.
func Quick() []harness.Scenario {
	var out []harness.Scenario
	for _, b := range builders {
		if b.quick {
			out = append(out, b.build(true))
		}
	}
	return out
}

// Names lists the Standard scenario names, in order.
func Names() []string {
	out := make([]string, len(builders))
	for i, b := range builders {
		out[i] = b.name
	}
	return out
}

// Lookup returns the Standard scenario with name.
func Lookup(name string) (harness.Scenario, error) {
	for _, b := range builders {
		if b.name == name {
			return b.build(false), nil
		}
	}
	return harness.Scenario{}, fmt.Errorf("scenarios: %q: %w; choose one of %s", name, ErrUnknownScenario, strings.Join(Names(), ", "))
}

// Select returns the Standard scenarios with the given names, in catalog
// order, or every one when names is empty.
func Select(names ...string) ([]harness.Scenario, error) {
	if len(names) == 0 {
		return Standard(), nil
	}
	for _, n := range names {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("scenarios: %q: %w; choose among %s", n, ErrUnknownScenario, strings.Join(Names(), ", "))
		}
	}
	var out []harness.Scenario
	for _, s := range Standard() {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

// outlastTimeout stretches the fault window [from, until) past the bound
// timeout.request_bound holds a declared timeout to (1.25 x + 500ms), with
// room: a client without its timeout is still waiting when the fault ends.
func outlastTimeout(from, until time.Duration) harness.Stretch {
	return harness.Stretch{From: from, Until: until, Need: harness.NeedRequestTimeout, Factor: 1.25, Plus: time.Second}
}

// recoveryTail leaves, after a fault that ends at faultEnd, the declared
// recovery time and a second to measure in, before the run ends at end.
func recoveryTail(faultEnd, end time.Duration) harness.Stretch {
	return harness.Stretch{From: faultEnd, Until: end, Need: harness.NeedRecoveryTime, Factor: 1, Plus: time.Second}
}

// ms shortens the schedules below.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// pick returns q for Quick and s for Standard.
func pick[T any](quick bool, q, s T) T {
	if quick {
		return q
	}
	return s
}

// checks lists a scenario's checks: the leak checks and the no-hang check
// run everywhere, then the scenario's own properties. Bounds come from the
// contract each history declares.
func checks(more ...harness.Check) harness.Checks {
	return append(append(harness.Checks(check.Leaks()), check.NoHang{}), more...)
}

var (
	evenMix      = harness.Mix{Inventory: 3, Payment: 1, Notification: 1}
	inventory    = harness.Mix{Inventory: 1}
	itemsRoute   = fakeservers.RouteItem
	chargesRoute = fakeservers.RouteCharges
)

func baseline(quick bool) harness.Scenario {
	return harness.Scenario{
		Name:     Baseline,
		Proves:   "with no fault at all, the client keeps its pool bounded and reused, reads every body whole, serves nearly every call, charges once and leaks nothing",
		Family:   harness.FamilyLeak,
		Seed:     seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: pick(quick, ms(1000), ms(1500)), Workers: 8, Mix: evenMix},
		Checks:   checks(check.PoolBound{}, check.PoolChurn{}, check.IntegrityDigest{}, check.RetryAttempts{}, check.Ledger{}, check.Goodput{}, check.MetricsTruthful{}),
	}
}

const (
	spikeLatency = 150 * time.Millisecond
	spikeJitter  = 50 * time.Millisecond
)

func latencySpike(quick bool) harness.Scenario {
	return harness.Scenario{
		Name:   LatencySpike,
		Proves: "under a latency spike with jitter on inventory and more callers than its pool, the client keeps the pool bounded and ends every call within its request timeout",
		Family: harness.FamilyPool,
		Seed:   seed,
		// 48 callers against a pool of at most 32 (16 by default).
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2500), Workers: 48, Mix: inventory},
		Steps: []harness.Step{
			{At: ms(300), Label: "latency 150ms ±50ms on inventory", Action: harness.AddToxic(fakeservers.Inventory, harness.Latency("spike", harness.Downstream, spikeLatency, spikeJitter))},
			{At: ms(2200), Label: "latency ends", Action: harness.RemoveToxic(fakeservers.Inventory, "spike")},
		},
		// Fail-fast under exhaustion is judged by pool-exhaustion: at 1.5
		// callers per connection a client that queues without limit waits
		// at most one answer for a free connection, which no bound with a
		// margin for a loaded machine can tell from failing fast.
		Checks: checks(check.PoolBound{}, check.RequestBound{}),
	}
}

func connectionResets(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: ConnectionResets,
		Proves: "when inventory resets a share of the GETs it has read, and then every connection to it is reset for a while, " +
			"no call reaches the server more often than the declared attempts (the transport's own silent replays included) nor without backoff, " +
			"calls fail fast instead of hanging, the dead connections are dropped, " +
			"and the client serves at its baseline rate again within its declared recovery time",
		Family: harness.FamilyRecovery,
		Seed:   seed,
		// Two kinds of reset, one after the other:
		//   - first the server reads 20% of the item GETs and resets their
		//     connection without answering. Go's http.Transport replays such
		//     a GET at once on another pooled connection, again while pooled
		//     connections keep dying; a client must count those replays as
		//     attempts and space them, which the retry checks judge. It comes
		//     first so that a breaker is still closed (once open, a breaker
		//     with a 1s open delay would turn the calls away instead).
		//   - then reset_peer on the upstream stream resets a connection as
		//     soon as the client writes to it, before the request reaches the
		//     server: it reaches the connections already open (they are
		//     closed on their next use) and new ones alike.
		// The baseline before the faults (~1s) and the tail after the
		// recovery time (~1.5s) are long enough that a stall of the machine
		// (other tests running) does not decide the throughput ratio.
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(6400), Workers: 16, ThinkTime: recoveryThink,
			Mix: harness.Mix{Inventory: 3, Notification: 1}},
		Steps: []harness.Step{
			{At: ms(1200), Label: "inventory resets 20% of item GETs after reading them", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "read-then-reset", Kind: fakeservers.FaultProcessThenFail, Route: itemsRoute, Method: "GET", Probability: 0.2, Then: fakeservers.ThenReset})},
			{At: ms(1900), Label: "per-request resets removed", Action: harness.ClearHTTPFaults(fakeservers.Inventory)},
			{At: ms(1900), Label: "reset_peer on every inventory connection", Action: harness.AddToxic(fakeservers.Inventory, harness.ResetPeer("reset", harness.Upstream, 0))},
			{At: ms(2400), Label: "reset_peer removed", Action: harness.RemoveToxic(fakeservers.Inventory, "reset")},
		},
		Stretch: []harness.Stretch{recoveryTail(ms(2400), ms(6400))},
		Checks:  checks(check.RequestBound{}, check.PoolBound{}, check.RetryAttempts{}, check.RetryBackoff{Service: fakeservers.Inventory}, check.RecoveryThroughput{Service: fakeservers.Inventory}, check.RecoveryLatency{Service: fakeservers.Inventory}, check.MetricsTruthful{}),
	}
}

func blackhole(quick bool) harness.Scenario {
	return harness.Scenario{
		Name:   Blackhole,
		Proves: "when inventory's answers vanish (a blackhole: the connection stays open, nothing comes back), every call still ends within the declared request timeout",
		Family: harness.FamilyTimeout,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(4000), Workers: 12,
			Mix: harness.Mix{Inventory: 3, Notification: 1}},
		Steps: []harness.Step{
			{At: ms(300), Label: "blackhole on inventory", Action: harness.AddToxic(fakeservers.Inventory, harness.Timeout("blackhole", harness.Downstream, 0))},
			// Removing a timeout toxic closes the connections it held, which
			// ends every call a client without a timeout left waiting: the
			// blackhole must outlast the request bound (the default
			// contract's 2s timeout + margin is 3s), or such a client passes.
			{At: ms(300) + blackholeFor, Label: "blackhole removed", Action: harness.RemoveToxic(fakeservers.Inventory, "blackhole")},
		},
		// A declared timeout longer than the default's faces a blackhole
		// that outlasts its bound too.
		Stretch: []harness.Stretch{outlastTimeout(ms(300), ms(300)+blackholeFor)},
		Checks:  checks(check.RequestBound{}, check.PoolBound{}),
	}
}

// blackholeFor is how long the blackhole holds inventory's answers: longer
// than the request bound of the default contract.
const blackholeFor = 3500 * time.Millisecond

func slowBody(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: SlowBody,
		Proves: "when inventory sends its headers promptly and then trickles the body, the client's timeout covers the body read, " +
			"so a call ends within the declared request timeout instead of when the server is done",
		Family: harness.FamilyTimeout,
		Seed:   seed,
		// The fake server's slow_body, not Toxiproxy's bandwidth toxic: the
		// workload's bodies are ~600 bytes, which the bandwidth toxic at its
		// lowest rate (1 KB/s) delivers headers and all within a second, so
		// it tests nothing a latency toxic does not. slow_body writes the
		// headers at once and the body at 40 B/s (~15 s), per request.
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2500), Workers: 12,
			Mix: harness.Mix{Inventory: 3, Notification: 1}},
		Steps: []harness.Step{
			{At: ms(300), Label: "inventory trickles 30% of bodies at 40 B/s", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "trickle", Kind: fakeservers.FaultSlowBody, Route: itemsRoute, Method: "GET", Probability: 0.3, BytesPerSecond: 40})},
			{At: ms(1800), Label: "bodies at full speed", Action: harness.ClearHTTPFaults(fakeservers.Inventory)},
		},
		// A body cut by the timeout must come back as an error, never
		// as a short success.
		Checks: checks(check.RequestBound{}, check.IntegrityDigest{}),
	}
}

func connectNeverCompletes(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: ConnectNeverCompletes,
		Proves: "when new connections to inventory never become usable (the proxy accepts TCP but nothing passes, so the TLS handshake never completes), " +
			"the client's connect and handshake timeouts end every call within the declared request timeout",
		Family: harness.FamilyTimeout,
		Seed:   seed,
		// On loopback a TCP connect always completes (the kernel answers the
		// SYN even for a listener that never accepts), so a connect that
		// hangs is made one layer up: a timeout toxic on the upstream stream
		// swallows the ClientHello. Disabling and re-enabling the proxy
		// right after drops the open connections, so every call from then on
		// needs a new connection and meets the stalled handshake.
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2500), Workers: 8,
			Mix: harness.Mix{Inventory: 3, Notification: 1}},
		Steps: []harness.Step{
			{At: ms(300), Label: "inventory swallows every byte from the client", Action: harness.AddToxic(fakeservers.Inventory, harness.Timeout("stall", harness.Upstream, 0))},
			{At: ms(300), Label: "inventory drops its open connections", Action: harness.DisableProxy(fakeservers.Inventory)},
			{At: ms(300), Label: "inventory accepts connections again (that never complete)", Action: harness.EnableProxy(fakeservers.Inventory)},
			{At: ms(1800), Label: "connections complete again", Action: harness.RemoveToxic(fakeservers.Inventory, "stall")},
		},
		Stretch: []harness.Stretch{outlastTimeout(ms(300), ms(1800))},
		Checks:  checks(check.RequestBound{}, check.PoolBound{}, check.ConnectTimeout{}),
	}
}

func serverErrorStorm(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: ServerErrorStorm,
		Proves: "when inventory answers 503 to nearly every read, the client's breaker opens so the attempts reaching the server collapse, " +
			"half-open admits only a few probes, and the client is healthy again within its declared recovery time once the storm ends",
		Family: harness.FamilyBreaker,
		Seed:   seed,
		// The baseline before the storm (0.8s) and the tail after the
		// recovery time (>1s) are long enough that a noisy neighbour on a
		// shared machine does not swing the throughput ratio by 30%.
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(6600), Workers: 12, ThinkTime: recoveryThink,
			Mix: harness.Mix{Inventory: 3, Notification: 1}},
		Steps: []harness.Step{
			{At: ms(1000), Label: "inventory answers 503 to 90% of reads", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "storm", Kind: fakeservers.FaultStatus, Route: itemsRoute, Method: "GET", Probability: 0.9, Status: 503})},
			{At: ms(2300), Label: "storm over", Action: harness.ClearHTTPFaults(fakeservers.Inventory)},
		},
		// The storm outlasts the declared open delay, so the breaker
		// half-opens inside it; the tail leaves the recovery time to judge.
		Stretch: []harness.Stretch{
			{From: ms(1000), Until: ms(2300), Need: harness.NeedBreakerOpenDelay, Factor: 1, Plus: ms(300)},
			recoveryTail(ms(2300), ms(6600)),
		},
		Checks: checks(check.BreakerOpens{Service: fakeservers.Inventory}, check.BreakerHalfOpen{Service: fakeservers.Inventory}, check.BreakerRecovers{Service: fakeservers.Inventory}, check.RetryAttempts{}, check.RecoveryThroughput{Service: fakeservers.Inventory},
			check.PoolChurn{}),
	}
}

// flakyShare is the share of inventory reads flaky-5xx answers with 503.
const flakyShare = 0.2

func flaky5xx(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: Flaky5xx,
		Proves: "when inventory answers 503 to one read in five, the client retries them with spaced, jittered backoff " +
			"and within its declared attempts, without multiplying the load on the server, and saves the calls its declared retries can save",
		Family: harness.FamilyRetry,
		Seed:   seed,
		// Few enough failures that no breaker trips: every failed read is a
		// candidate for a retry, so the gaps between attempts are many (the
		// storm trips the breaker within a few retries).
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2500), Workers: 12, Mix: inventory},
		Steps: []harness.Step{
			{At: ms(300), Label: "inventory answers 503 to 20% of reads", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "flaky", Kind: fakeservers.FaultStatus, Route: itemsRoute, Method: "GET", Probability: flakyShare, Status: 503})},
		},
		// Every failed read is one the declared retries can save.
		Checks: checks(check.RetryAttempts{}, check.RetryBackoff{Service: fakeservers.Inventory},
			check.BackoffGrows{Service: fakeservers.Inventory}, check.Jitter{Service: fakeservers.Inventory}, check.GivesUpPromptly{}, check.PoolChurn{},
			check.AttemptsUsed{Service: fakeservers.Inventory}, check.BackoffBounded{Service: fakeservers.Inventory},
			check.Goodput{Service: fakeservers.Inventory, FaultFailure: flakyShare}),
	}
}

// impatientCallers give up on half the calls well before a 1s
// Retry-After: 30% with a 150ms deadline, 20% cancelled after 100ms. A
// call that waits out a Retry-After holds its worker for a second, so the
// run sees only a couple of dozen of them; half of those must be calls
// whose caller gives up for a client that sleeps through it to be seen.
var impatientCallers = harness.CallerLimits{DeadlineShare: 0.3, Deadline: ms(150), CancelShare: 0.2, CancelAfter: ms(100)}

func retryAfter429(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: RetryAfter429,
		Proves: "when the services answer 429 with Retry-After: 1, the client never retries sooner than asked " +
			"(it waits, or gives the 429 back when its deadline is nearer), returns to a caller whose deadline passes or who cancels then, " +
			"keyed charges stay single, and a 503 asking for 30s, beyond any call's deadline, is handed back at once instead of slept on",
		Family: harness.FamilyRetry,
		Seed:   seed,
		// A share of the callers give up before the Retry-After (a deadline,
		// a cancellation in flight): the client must return to them then,
		// not when its sleep ends.
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: pick(quick, ms(1500), ms(2500)), Workers: 8,
			Mix: harness.Mix{Inventory: 3, Payment: 1}, KeyedCharges: true, Caller: impatientCallers},
		Steps: []harness.Step{
			{At: ms(200), Label: "inventory throttles 30% of reads (Retry-After: 1), answers 503 to 20% of the rest (Retry-After: 30)", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "throttle", Kind: fakeservers.FaultStatus, Route: itemsRoute, Method: "GET", Probability: 0.3, Status: 429, RetryAfter: "1"},
				// A share of the rest asks for longer than any call may last.
				fakeservers.Fault{Name: "unavailable-30s", Kind: fakeservers.FaultStatus, Route: itemsRoute, Method: "GET", Probability: 0.2, Status: 503, RetryAfter: "30"})},
			{At: ms(200), Label: "payment throttles 30% of charges (Retry-After: 1)", Action: harness.SetHTTPFaults(fakeservers.Payment,
				fakeservers.Fault{Name: "throttle", Kind: fakeservers.FaultStatus, Route: chargesRoute, Method: "POST", Probability: 0.3, Status: 429, RetryAfter: "1"})},
		},
		Checks: checks(check.RetryAfter{RetryAfter: time.Second}, check.RetryAttempts{}, check.Ledger{}, check.CallerDeadline{}, check.GivesUpPromptly{},
			check.AttemptsUsed{Status: 429, RetryAfter: time.Second}),
	}
}

func processThenFail(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: ProcessThenFail,
		Proves: "when payment commits a charge and then the connection dies or it answers 500, a client retrying a charge that carries " +
			"no Idempotency-Key would charge the customer twice: the client never does",
		Family: harness.FamilyRetry,
		Seed:   seed,
		// Charges carry no Idempotency-Key (Workload.KeyedCharges false):
		// only an unsafe client duplicates.
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: pick(quick, ms(1500), ms(2000)), Workers: 6,
			Mix: harness.Mix{Payment: 1}},
		Steps: []harness.Step{
			{At: ms(100), Label: "payment commits then resets 20% / answers 500 to 10% of charges", Action: harness.SetHTTPFaults(fakeservers.Payment,
				fakeservers.Fault{Name: "commit-reset", Kind: fakeservers.FaultProcessThenFail, Route: chargesRoute, Method: "POST", Probability: 0.2, Then: fakeservers.ThenReset},
				fakeservers.Fault{Name: "commit-500", Kind: fakeservers.FaultProcessThenFail, Route: chargesRoute, Method: "POST", Probability: 0.125, Then: fakeservers.ThenStatus, Status: 500})},
		},
		Checks: checks(check.Ledger{}, check.RetryAttempts{}),
	}
}

func restart(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: Restart,
		Proves: "when inventory goes away (every connection dropped, new ones refused) and comes back, " +
			"the client recovers its throughput and latency within its declared recovery time",
		Family: harness.FamilyRecovery,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(4800), Workers: 12, ThinkTime: recoveryThink,
			Mix: harness.Mix{Inventory: 3, Notification: 1}},
		Steps: []harness.Step{
			{At: ms(800), Label: "inventory down", Action: harness.DisableProxy(fakeservers.Inventory)},
			{At: ms(1300), Label: "inventory back", Action: harness.EnableProxy(fakeservers.Inventory)},
		},
		Stretch: []harness.Stretch{recoveryTail(ms(1300), ms(4800))},
		Checks:  checks(check.RecoveryThroughput{Service: fakeservers.Inventory}, check.RecoveryLatency{Service: fakeservers.Inventory}, check.BreakerRecovers{Service: fakeservers.Inventory}, check.PoolBound{}),
	}
}

// recoveryThink paces the workers of the scenarios whose verdicts compare
// throughput before and after a fault. A closed loop without a pause runs
// the machine's CPU flat out (about 10,000 calls/s here), so its throughput
// measures how much CPU other processes left free, not whether the client
// recovered; paced at a small fraction of that, a healthy client serves the same
// calls/s before and after the fault on a loaded machine, and a client that
// did not recover still serves fewer.
const recoveryThink = 10 * time.Millisecond

// keepAliveIdle is the server idle timeout of the keep-alive race: far
// below any client's own, and spaced calls land just past it.
const keepAliveIdle = 200 * time.Millisecond

func keepAliveRace(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: KeepAliveRace,
		Proves: "when the server closes idle connections sooner than the client does and calls come just as it closes them, " +
			"the client drops the dead connections (no leak), keeps its pool and attempts bounded and never returns a cut body as a success",
		Family: harness.FamilyRecovery,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2500), Workers: 6,
			ThinkTime: keepAliveIdle + ms(5), Mix: harness.Mix{Inventory: 2, Notification: 1}},
		Steps: []harness.Step{
			{At: 0, Label: "inventory closes connections idle 200ms", Action: harness.SetKeepAlive(fakeservers.Inventory, fakeservers.KeepAlive{IdleTimeout: fakeservers.Duration(keepAliveIdle)})},
			{At: 0, Label: "notification closes connections idle 200ms", Action: harness.SetKeepAlive(fakeservers.Notification, fakeservers.KeepAlive{IdleTimeout: fakeservers.Duration(keepAliveIdle)})},
		},
		Checks: checks(check.IntegrityDigest{}, check.RetryAttempts{}, check.PoolBound{}),
	}
}

// exhaustionLatency is how long inventory takes to answer while the pool is
// exhausted.
const exhaustionLatency = 400 * time.Millisecond

func poolExhaustion(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: PoolExhaustion,
		Proves: "when every inventory call is slow and three times more callers than its pool want one, the client opens no more " +
			"connections than declared and fails the excess within its pool-wait bound instead of queueing them",
		Family: harness.FamilyPool,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: pick(quick, ms(1500), ms(1700)), Workers: 96,
			Mix: inventory},
		Steps: []harness.Step{
			{At: 0, Label: "inventory answers after 400ms", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "slow", Kind: fakeservers.FaultDelay, Route: itemsRoute, Method: "GET", Delay: fakeservers.Duration(exhaustionLatency)})},
		},
		Checks: checks(check.PoolBound{}, check.RequestBound{}, check.PoolExhaustion{Service: fakeservers.Inventory, Latency: exhaustionLatency}, check.MetricsTruthful{}),
	}
}

func fragmentedResponses(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: FragmentedResponses,
		Proves: "when every response arrives in small fragments, the client reads each body whole (its digest matches) " +
			"within its declared timeouts, so calls succeed as they do unfragmented, and keeps its pool bounded",
		Family:   harness.FamilyPool,
		Seed:     seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2000), Workers: 8, Mix: evenMix},
		Steps: []harness.Step{
			{At: 0, Label: "inventory responses in ~64-byte fragments", Action: harness.AddToxic(fakeservers.Inventory, harness.Slicer("frag", harness.Downstream, 64, 32, ms(1)))},
			{At: 0, Label: "payment responses in ~64-byte fragments", Action: harness.AddToxic(fakeservers.Payment, harness.Slicer("frag", harness.Downstream, 64, 32, ms(1)))},
			{At: 0, Label: "notification responses in ~64-byte fragments", Action: harness.AddToxic(fakeservers.Notification, harness.Slicer("frag", harness.Downstream, 64, 32, ms(1)))},
		},
		// No pool.churn: the fault lasts the whole run and churn is
		// only judged outside faults; baseline judges it. Fragments ~1ms
		// apart fit every declared timeout: every call must succeed.
		Checks: checks(check.IntegrityDigest{}, check.PoolBound{}, check.Goodput{}),
	}
}

// downFrom and downFor place one-service-down's outage: a short baseline
// before it, and an outage of at least twice the reference payment breaker's
// trip allowance (half its 5s open delay), so breaker.opens judges the
// calls made after the breaker had time to trip.
const (
	downFrom = 700 * time.Millisecond
	downFor  = 5 * time.Second
)

func oneServiceDown(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: OneServiceDown,
		Proves: "when payment hangs (connections open but nothing passes), the client fails payment calls fast and inventory and notification " +
			"stay as healthy as before: one service's stuck calls do not take the others' connections",
		Family: harness.FamilyBreaker,
		Seed:   seed,
		// An open loop: a closed loop's workers stuck on payment would
		// slow the other services by construction, blaming the client for
		// the workload.
		//
		// The outage holds calls instead of refusing them: a disabled proxy
		// refuses at once, so a client sharing one pool across services never
		// sees its pool starve. A timeout toxic on the upstream stream
		// swallows every byte (the TLS handshake never completes), and
		// dropping the open connections right after makes every payment call
		// meet it; each call then holds its connection until the client's
		// own connect/handshake timeout ends it, so held calls end by
		// themselves. Removing the toxic shortly before the run ends closes
		// whatever it still holds.
		Workload: harness.Workload{Mode: harness.OpenLoop, Duration: downFrom + downFor + ms(300), Rate: 200, MaxInFlight: 200, Mix: evenMix},
		Steps: []harness.Step{
			{At: downFrom, Label: "payment swallows every byte from the client", Action: harness.AddToxic(fakeservers.Payment, harness.Timeout("hang", harness.Upstream, 0))},
			{At: downFrom, Label: "payment drops its open connections", Action: harness.DisableProxy(fakeservers.Payment)},
			{At: downFrom, Label: "payment accepts connections again (that never complete)", Action: harness.EnableProxy(fakeservers.Payment)},
			{At: downFrom + downFor, Label: "payment hang removed", Action: harness.RemoveToxic(fakeservers.Payment, "hang")},
		},
		Stretch: []harness.Stretch{{From: downFrom, Until: downFrom + downFor, Need: harness.NeedBreakerOpenDelay, Factor: 1}},
		Checks:  checks(check.Isolation{Down: fakeservers.Payment}, check.BreakerOpens{Service: fakeservers.Payment}),
	}
}

// idleLifetimePause is how long every caller of pool-idle-lifetime thinks
// between its calls: the pool sits idle that long between two bursts,
// longer than an idle timeout of up to 1s plus the check's margin, and the
// second burst finds the first burst's connections older than a lifetime
// of up to 500ms plus its margin (a longer one is judged in soak).
const idleLifetimePause = 1800 * time.Millisecond

func poolIdleLifetime(quick bool) harness.Scenario {
	return harness.Scenario{
		Name: PoolIdleLifetime,
		Proves: "when calls to inventory come in bursts with pauses between them, the client closes connections left idle past its declared idle timeout " +
			"and starts no request on a connection older than its declared max lifetime",
		Family: harness.FamilyPool,
		Seed:   seed,
		// Two callers, each thinking between calls: bursts at 0 and 1.8s
		// (2.2s leaves room for a second burst that starts late).
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2200), Workers: 2, ThinkTime: idleLifetimePause, Mix: inventory},
		Checks:   checks(check.PoolBound{}, check.ConnLifetime{}, check.IdleTimeout{}),
	}
}
