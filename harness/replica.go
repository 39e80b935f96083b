package harness

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Replicas: an environment may run a service as several replicas, each a
// fake service of its own behind its own Toxiproxy proxy and with its own
// server-side truth, so that something in front of them (a reverse proxy's
// listener, which the client calls by the service's name) balances across
// them and one replica can be faulted alone. A replica is named like a
// StatefulSet's pod, "inventory-0": the name is at once its Toxiproxy
// proxy, the Action.Service that faults it alone, and the key of its truth
// in History.ServerAfterRun. (A "#" would be a URL fragment in Toxiproxy's
// API paths.)

// ReplicaName names replica i of service, e.g. "inventory-0".
func ReplicaName(service string, i int) string { return service + "-" + strconv.Itoa(i) }

// ReplicaOf reads a replica's name: ReplicaOf("inventory-2") is
// ("inventory", 2, true); a name that is not a replica's is false.
func ReplicaOf(name string) (service string, i int, ok bool) {
	j := strings.LastIndexByte(name, '-')
	if j <= 0 || j == len(name)-1 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[j+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != name[j+1:] {
		return "", 0, false
	}
	return name[:j], n, true
}

// Replicated is an optional Environment extension: an environment that
// runs services as replicas lists their endpoints (each through its own
// Toxiproxy proxy, named by ReplicaName) and observes each by its name.
// After every run the runner records each replica's truth in
// History.ServerAfterRun next to the services', so checks can judge what
// stands between the client and the replicas.
type Replicated interface {
	// Replicas lists the replicas of service in order; none when the
	// service runs as one.
	Replicas(service string) []Service
}

// Replicas lists the replicas of service whose truth h recorded, in
// replica order; none when the service ran as one.
func (h *History) Replicas(service string) []string {
	type rep struct {
		name string
		i    int
	}
	var reps []rep
	for name := range h.ServerAfterRun {
		if svc, i, ok := ReplicaOf(name); ok && svc == service {
			reps = append(reps, rep{name, i})
		}
	}
	slices.SortFunc(reps, func(a, b rep) int { return cmp.Compare(a.i, b.i) })
	out := make([]string, len(reps))
	for k, r := range reps {
		out[k] = r.name
	}
	return out
}

// observeReplicas records, in truth, the truth of every replica of the
// run's services, when env runs any.
func observeReplicas(ctx context.Context, env Environment, services []string, truth map[string]ServerTruth, timeout time.Duration) {
	rl, ok := env.(Replicated)
	if !ok {
		return
	}
	for _, svc := range services {
		for _, r := range rl.Replicas(svc) {
			truth[r.Name] = observeTruth(ctx, env, r.Name, timeout)
		}
	}
}
