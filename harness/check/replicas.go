package check

import (
	"cmp"
	"slices"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// What the checks read of services that ran as replicas behind a reverse
// proxy (see harness.ReplicaName): the client called the service at the
// proxy, whose connections no fake service sees, and each replica holds
// its own truth.

// replicaTruth is one replica's truth after the run.
type replicaTruth struct {
	name string
	st   *fakeservers.Stats
}

// replicaTruths lists the replicas of service h recorded, with the truth
// of those whose truth could be read; missing counts the others.
func replicaTruths(h *harness.History, service string) (truths []replicaTruth, missing int) {
	for _, name := range h.Replicas(service) {
		st, ok := serverTruth(h, name)
		if !ok {
			missing++
			continue
		}
		truths = append(truths, replicaTruth{name, st})
	}
	return truths, missing
}

// proxiedServices lists the services of h (or service alone) that ran as
// replicas.
func proxiedServices(h *harness.History, service string) []string {
	var out []string
	for _, svc := range servicesOrAll(h, service) {
		if len(h.Replicas(svc)) > 0 {
			out = append(out, svc)
		}
	}
	return out
}

// proxyWindows are the fault windows of service and of each of its
// replicas.
func proxyWindows(h *harness.History, service string) []harness.Window {
	ws := harness.FaultWindows(h, service)
	for _, r := range h.Replicas(service) {
		ws = append(ws, harness.FaultWindows(h, r)...)
	}
	return ws
}

// requestTruth is what the servers behind service saw of the client's
// requests: its own truth or, when it ran as replicas behind a proxy,
// theirs merged: connections and requests of every replica (connection
// ids made distinct), requests in arrival order with their attempts
// numbered across replicas, charges summed. A replica whose truth is
// missing makes it unknown.
func requestTruth(h *harness.History, service string) (*fakeservers.Stats, bool) {
	if st, ok := serverTruth(h, service); ok {
		return st, true
	}
	truths, missing := replicaTruths(h, service)
	if len(truths) == 0 || missing > 0 {
		return nil, false
	}
	m := &fakeservers.Stats{Service: service, Charges: map[string]int{}}
	for i, rt := range truths {
		tag := uint64(i+1) << 48
		for _, c := range rt.st.Connections {
			c.ID |= tag
			m.Connections = append(m.Connections, c)
		}
		for _, r := range rt.st.Requests {
			r.ConnID |= tag
			m.Requests = append(m.Requests, r)
		}
		for order, n := range rt.st.Charges {
			m.Charges[order] += n
		}
		m.OpenConnections += rt.st.OpenConnections
		m.BusyConnections += rt.st.BusyConnections
		m.Accepted += rt.st.Accepted
		m.PeakOpen += rt.st.PeakOpen
		m.PeakBusy += rt.st.PeakBusy
		if rt.st.Now.After(m.Now) {
			m.Now = rt.st.Now
		}
	}
	slices.SortStableFunc(m.Requests, func(a, b fakeservers.RequestRecord) int { return a.Arrived.Compare(b.Arrived) })
	attempts := map[string]int{}
	for i := range m.Requests {
		if id := m.Requests[i].RequestID; id != "" {
			attempts[id]++
			m.Requests[i].Attempt = attempts[id]
		}
	}
	return m, true
}

// runRequests are the requests of this run st saw (by their request id).
func runRequests(h *harness.History, st *fakeservers.Stats) []fakeservers.RequestRecord {
	out := make([]fakeservers.RequestRecord, 0, len(st.Requests))
	for _, r := range st.Requests {
		if _, ok := seqOf(h, r.RequestID); ok {
			out = append(out, r)
		}
	}
	return out
}

// firstArrival is the offset of the first of reqs to arrive at or after
// from, or false.
func firstArrival(h *harness.History, reqs []fakeservers.RequestRecord, from time.Duration) (time.Duration, bool) {
	var first time.Duration
	found := false
	for _, r := range reqs {
		if t := offset(h, r.Arrived); t >= from && (!found || t < first) {
			first, found = t, true
		}
	}
	return first, found
}

// byCount orders the keys of m by count, most first, then by key.
func byCount[K cmp.Ordered](m map[K]int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return keys
}
