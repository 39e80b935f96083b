package scenarios

import (
	"cmp"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

// The proxy catalog certifies a reverse proxy between a well-behaved
// client (the reference client) and the services, which run as replicas
// behind it (see package proxy): its scenarios fault one replica by its
// name (inventory-1) or every replica by the service's name, and the proxy
// checks judge the upstream side from the replicas' truth.

// Proxy scenario names, in Proxy order.
const (
	UpstreamReuse         = "upstream-reuse"
	UpstreamBound         = "upstream-bound"
	UpstreamKeepAliveRace = "upstream-keepalive-race"
	ReplicaDown           = "replica-down"
	ReplicaFailing        = "replica-failing"
	ReplicaSlow           = "replica-slow"
	ProxyProcessThenFail  = "proxy-process-then-fail"
)

// Defaults of ProxyOptions.
const (
	// DefaultFailTimeout is nginx's own fail_timeout.
	DefaultFailTimeout = 10 * time.Second
	// DefaultUpstreamIdle is the replicas' idle timeout in the keep-alive
	// race.
	DefaultUpstreamIdle = time.Second
)

// ProxyOptions are what a proxy configuration promises, which the proxy
// scenarios hold it to.
type ProxyOptions struct {
	// FailTimeout is how long the configuration keeps a failed replica out
	// before it tries it again (nginx: fail_timeout; HAProxy: inter x rise);
	// a replica must get traffic again within it and a second after it
	// recovers. Default DefaultFailTimeout; the failover scenarios last
	// that long after the fault.
	FailTimeout time.Duration
	// MaxUpstreamConns is the most connections the configuration opens to
	// one replica at once (nginx: max_conns; HAProxy: maxconn); 0: no
	// bound stated, the client's concurrent calls bound them.
	MaxUpstreamConns int
	// UpstreamIdle is how long the replicas keep an idle connection in
	// the keep-alive race, your upstreams' own idle timeout (default
	// DefaultUpstreamIdle): the proxy must drop idle upstream connections
	// sooner.
	UpstreamIdle time.Duration
}

func (o ProxyOptions) withDefaults() ProxyOptions {
	o.FailTimeout = cmp.Or(o.FailTimeout, DefaultFailTimeout)
	o.UpstreamIdle = cmp.Or(o.UpstreamIdle, DefaultUpstreamIdle)
	return o
}

// proxyBuilders make each proxy scenario, in Proxy order.
var proxyBuilders = []struct {
	name  string
	quick bool
	build func(o ProxyOptions, quick bool) harness.Scenario
}{
	{UpstreamReuse, true, upstreamReuse},
	{UpstreamBound, false, upstreamBound},
	{UpstreamKeepAliveRace, true, upstreamKeepAliveRace},
	{ReplicaDown, false, replicaDown},
	{ReplicaFailing, false, replicaFailing},
	{ReplicaSlow, false, replicaSlow},
	{ProxyProcessThenFail, true, proxyProcessThenFail},
}

// Proxy is the proxy catalog, in the order it runs.
func Proxy(o ProxyOptions) []harness.Scenario {
	o = o.withDefaults()
	out := make([]harness.Scenario, 0, len(proxyBuilders))
	for _, b := range proxyBuilders {
		out = append(out, b.build(o, false))
	}
	return out
}

// ProxyQuick is a short subset of Proxy: upstream reuse, the keep-alive
// race and the double charge.
func ProxyQuick(o ProxyOptions) []harness.Scenario {
	o = o.withDefaults()
	var out []harness.Scenario
	for _, b := range proxyBuilders {
		if b.quick {
			out = append(out, b.build(o, true))
		}
	}
	return out
}

// ProxySoak is Proxy stretched as Soak stretches Standard.
func ProxySoak(o ProxyOptions) []harness.Scenario {
	out := Proxy(o)
	for i := range out {
		out[i] = lengthen(out[i], soakFactor)
	}
	return out
}

// ProxyNames lists the proxy scenario names, in order.
func ProxyNames() []string {
	out := make([]string, len(proxyBuilders))
	for i, b := range proxyBuilders {
		out[i] = b.name
	}
	return out
}

// proxyChecks lists a proxy scenario's checks: no call hangs, then the
// scenario's own. The client's leak checks are left out: the client is
// the well-behaved reference, and the server truth of its own connections
// ends at the proxy.
func proxyChecks(more ...harness.Check) harness.Checks {
	return append(harness.Checks{check.NoHang{}}, more...)
}

// failedReplica is the replica the failover scenarios fail.
var failedReplica = harness.ReplicaName(fakeservers.Inventory, 1)

func upstreamReuse(o ProxyOptions, quick bool) harness.Scenario {
	return harness.Scenario{
		Name: UpstreamReuse,
		Proves: "with no fault, the proxy reuses its upstream connections (new connections per 1000 requests stay near zero), " +
			"keeps them within what its configuration promises, answers every call and passes bodies and charges through intact",
		Family: harness.FamilyPool,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: pick(quick, ms(2000), ms(3000)), Workers: 8,
			ThinkTime: ms(1), Mix: harness.Mix{Inventory: 3, Payment: 1}},
		Checks: proxyChecks(check.UpstreamReuse{}, check.UpstreamBound{MaxConns: o.MaxUpstreamConns}, check.ProxyErrors{},
			check.IntegrityDigest{}, check.Ledger{}),
	}
}

func upstreamBound(o ProxyOptions, quick bool) harness.Scenario {
	return harness.Scenario{
		Name: UpstreamBound,
		Proves: "when every replica is slow and many calls are in flight, the proxy opens no more connections to a replica than its configuration promises " +
			"(keepalive caps idle connections, not open ones) and still answers every call",
		Family: harness.FamilyPool,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(2500), Workers: 24,
			Mix: harness.Mix{Inventory: 1}},
		Steps: []harness.Step{
			{At: 0, Label: "every inventory replica answers after 50ms", Action: harness.SetHTTPFaults(fakeservers.Inventory,
				fakeservers.Fault{Name: "slow", Kind: fakeservers.FaultDelay, Route: itemsRoute, Method: "GET", Delay: fakeservers.Duration(50 * time.Millisecond)})},
		},
		Checks: proxyChecks(check.UpstreamBound{MaxConns: o.MaxUpstreamConns}, check.ProxyErrors{}),
	}
}

// raceWindow is how late a replica's close reaches the proxy in the
// keep-alive race, as over a network: a request the proxy sends on the
// connection meanwhile is lost.
const raceWindow = 100 * time.Millisecond

func upstreamKeepAliveRace(o ProxyOptions, quick bool) harness.Scenario {
	idle := o.UpstreamIdle
	ka := fakeservers.KeepAlive{IdleTimeout: fakeservers.Duration(idle)}
	return harness.Scenario{
		Name: UpstreamKeepAliveRace,
		Proves: "when the replicas close idle connections sooner than the proxy would and calls come just as they close them, " +
			"the proxy does not hand the client a 502 for a request it sent on a dying connection (a POST it cannot retry), nor a cut body, nor a second charge",
		Family: harness.FamilyRecovery,
		Seed:   seed,
		// Workers that pause the idle timeout and half the race window
		// between calls send the next call on an upstream connection just
		// after its replica closed it and before the proxy hears of it.
		// Charges (POSTs without a key) are what a proxy must not retry on
		// its own.
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: pick(quick, 4*idle+ms(500), 6*idle+ms(500)), Workers: 6,
			ThinkTime: idle + raceWindow/2, Mix: harness.Mix{Inventory: 1, Payment: 1}},
		Steps: []harness.Step{
			{At: 0, Label: "inventory replicas close connections idle " + idle.String(), Action: harness.SetKeepAlive(fakeservers.Inventory, ka)},
			{At: 0, Label: "payment replicas close connections idle " + idle.String(), Action: harness.SetKeepAlive(fakeservers.Payment, ka)},
			{At: 0, Label: "inventory replicas' closes take 100ms to reach the proxy", Action: harness.AddToxic(fakeservers.Inventory, harness.SlowClose("wire", harness.Downstream, raceWindow))},
			{At: 0, Label: "payment replicas' closes take 100ms to reach the proxy", Action: harness.AddToxic(fakeservers.Payment, harness.SlowClose("wire", harness.Downstream, raceWindow))},
		},
		Checks: proxyChecks(check.ProxyErrors{}, check.IntegrityDigest{}, check.Ledger{}),
	}
}

// failover builds a scenario that fails inventory-1 from 1s to 3s with
// the given steps, and lasts the fail timeout and two seconds after.
func failover(name, proves string, o ProxyOptions, fail, recover harness.Step) harness.Scenario {
	from, until := ms(1000), ms(3000)
	fail.At, recover.At = from, until
	return harness.Scenario{
		Name:     name,
		Proves:   proves,
		Family:   harness.FamilyRecovery,
		Seed:     seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: until + o.FailTimeout + 2*time.Second, Workers: 8, ThinkTime: ms(5), Mix: harness.Mix{Inventory: 1}},
		Steps:    []harness.Step{fail, recover},
		Checks: proxyChecks(check.ProxyErrors{Service: fakeservers.Inventory},
			check.Failover{Replica: failedReplica, ReturnWithin: o.FailTimeout + time.Second}),
	}
}

func replicaDown(o ProxyOptions, quick bool) harness.Scenario {
	return failover(ReplicaDown,
		"when one replica goes down (its connections dropped, new ones refused), the calls it held and those that follow are answered by the others, "+
			"and the proxy sends it traffic again within its fail timeout once it is back",
		o,
		harness.Step{Label: failedReplica + " down", Action: harness.DisableProxy(failedReplica)},
		harness.Step{Label: failedReplica + " back", Action: harness.EnableProxy(failedReplica)})
}

func replicaFailing(o ProxyOptions, quick bool) harness.Scenario {
	return failover(ReplicaFailing,
		"when one replica answers 503 to everything, the proxy takes it out (the client sees no 503) and sends it traffic again "+
			"within its fail timeout once it answers again",
		o,
		harness.Step{Label: failedReplica + " answers 503 to every request", Action: harness.SetHTTPFaults(failedReplica,
			fakeservers.Fault{Name: "failing", Kind: fakeservers.FaultStatus, Status: 503})},
		harness.Step{Label: failedReplica + " answers again", Action: harness.ClearHTTPFaults(failedReplica)})
}

// slowReplica is the replica replica-slow slows down.
var slowReplica = harness.ReplicaName(fakeservers.Inventory, 2)

func replicaSlow(o ProxyOptions, quick bool) harness.Scenario {
	return harness.Scenario{
		Name: ReplicaSlow,
		Proves: "when one replica answers 300ms late, the proxy neither times the calls out nor opens more connections to it than promised: " +
			"a slow replica costs latency, not errors",
		Family: harness.FamilyTimeout,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: ms(4500), Workers: 8, ThinkTime: ms(5),
			Mix: harness.Mix{Inventory: 1}},
		Steps: []harness.Step{
			{At: ms(1000), Label: slowReplica + " answers 300ms late", Action: harness.AddToxic(slowReplica, harness.Latency("slow", harness.Downstream, 300*time.Millisecond, 0))},
			{At: ms(2500), Label: slowReplica + " on time again", Action: harness.RemoveToxic(slowReplica, "slow")},
		},
		Checks: proxyChecks(check.ProxyErrors{}, check.UpstreamBound{MaxConns: o.MaxUpstreamConns}),
	}
}

func proxyProcessThenFail(o ProxyOptions, quick bool) harness.Scenario {
	return harness.Scenario{
		Name: ProxyProcessThenFail,
		Proves: "when a payment replica commits a charge and then its connection dies or it answers 500, the proxy does not send the charge " +
			"(a POST without an Idempotency-Key) to another replica, which would charge the customer twice",
		Family: harness.FamilyRetry,
		Seed:   seed,
		Workload: harness.Workload{Mode: harness.ClosedLoop, Duration: pick(quick, ms(1500), ms(2000)), Workers: 6,
			Mix: harness.Mix{Payment: 1}},
		Steps: []harness.Step{
			{At: ms(100), Label: "payment replicas commit then reset 20% / answer 500 to 10% of charges", Action: harness.SetHTTPFaults(fakeservers.Payment,
				fakeservers.Fault{Name: "commit-reset", Kind: fakeservers.FaultProcessThenFail, Route: chargesRoute, Method: "POST", Probability: 0.2, Then: fakeservers.ThenReset},
				fakeservers.Fault{Name: "commit-500", Kind: fakeservers.FaultProcessThenFail, Route: chargesRoute, Method: "POST", Probability: 0.125, Then: fakeservers.ThenStatus, Status: 500})},
		},
		Checks: proxyChecks(check.Ledger{}),
	}
}
