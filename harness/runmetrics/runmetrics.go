// Package runmetrics owns the Prometheus view of a poolproof run: the
// calls, errors, latencies, server connections, faults and scenario of
// the run in progress, fed by a harness.Observer, in a registry of its own,
// served on a loopback address for the length of a command.
package runmetrics

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Metric names the registry exposes; dashboards/ and the README use them.
const (
	NameCalls       = "poolproof_run_calls_total"
	NameErrors      = "poolproof_run_errors_total"
	NameLatency     = "poolproof_run_call_duration_seconds"
	NameServerConns = "poolproof_run_server_connections"
	NameFaults      = "poolproof_run_faults_active"
	NameScenario    = "poolproof_run_scenario_info"
	NameInFlight    = "poolproof_run_calls_in_flight"
)

// Error classes beyond harness.ErrorClass: a call that returned (class
// none) but is not OK.
const (
	classHTTPStatus     = "http_status"     // a non-2xx answer
	classDigestMismatch = "digest_mismatch" // the body read is not the one served
)

// Metrics is a harness.Observer that keeps the run's metrics. The zero
// value is not usable; use New.
type Metrics struct {
	reg *prometheus.Registry

	calls       *prometheus.CounterVec
	errors      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	serverConns *prometheus.GaugeVec
	faults      *prometheus.GaugeVec
	scenario    *prometheus.GaugeVec
	inFlight    prometheus.Gauge

	// The per-call children, resolved once so that a recorded call costs
	// atomic adds, not label hashing: indexed by op, by service.
	callsByOp      [8]prometheus.Counter
	latencyByOp    [8]prometheus.Observer
	errorsByClass  [8]map[string]prometheus.Counter // by service, then class; filled in New, read only after
	maxOp, maxServ int

	mu       sync.Mutex // guards services and active between runs and steps
	services []string
	active   map[[2]string]bool // service, fault
}

// New returns metrics in a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameCalls,
			Help: "Calls the workload made and recorded, by service and operation."}, []string{"service", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameErrors,
			Help: "Calls that did not end in a 2xx answer read intact, by service and error class."}, []string{"service", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameLatency,
			Help:    "Call latency as the workload saw it (Do and the body read; a hang counts until the watchdog gave up), by service.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"service"}),
		serverConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameServerConns,
			Help: "Connections the service had open at the last sample (server-side truth), by service."}, []string{"service"}),
		faults: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameFaults,
			Help: "1 while the nemesis holds a fault on a service, by service and fault."}, []string{"service", "fault"}),
		scenario: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameScenario,
			Help: "1 for the scenario running now."}, []string{"scenario"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: NameInFlight,
			Help: "Calls started and not yet recorded, at the last sample."}),
		active: map[[2]string]bool{},
	}
	m.reg.MustRegister(m.calls, m.errors, m.latency, m.serverConns, m.faults, m.scenario, m.inFlight)
	for op := harness.OpGetItem; op.Service() != harness.ServiceUnknown && int(op) < len(m.callsByOp); op++ {
		svc := op.Service().String()
		m.callsByOp[op] = m.calls.WithLabelValues(svc, op.String())
		m.latencyByOp[op] = m.latency.WithLabelValues(svc)
		m.maxOp = int(op)
	}
	for _, name := range fakeservers.Services {
		id := harness.ServiceIDOf(name)
		if int(id) >= len(m.errorsByClass) {
			continue
		}
		byClass := map[string]prometheus.Counter{}
		for c := harness.ClassNone + 1; c <= harness.ClassOther; c++ {
			byClass[c.String()] = m.errors.WithLabelValues(name, c.String())
		}
		for _, c := range []string{classHTTPStatus, classDigestMismatch} {
			byClass[c] = m.errors.WithLabelValues(name, c)
		}
		m.errorsByClass[id] = byClass
		m.maxServ = max(m.maxServ, int(id))
	}
	return m
}

// Registry is the registry the metrics are in, to serve or to gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// RunStarted names the scenario and forgets the previous run's faults and
// connections: every run starts on a reset environment.
func (m *Metrics) RunStarted(scenario string, services []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scenario.Reset()
	m.scenario.WithLabelValues(scenario).Set(1)
	m.faults.Reset()
	clear(m.active)
	m.serverConns.Reset()
	m.services = append(m.services[:0], services...)
	m.inFlight.Set(0)
}

// CallRecorded counts one call, its latency and its error class.
func (m *Metrics) CallRecorded(c harness.CallRecord) {
	if int(c.Op) > m.maxOp || m.callsByOp[c.Op] == nil {
		svc := c.Service.String()
		m.calls.WithLabelValues(svc, c.Op.String()).Inc()
		m.latency.WithLabelValues(svc).Observe(c.Latency().Seconds())
	} else {
		m.callsByOp[c.Op].Inc()
		m.latencyByOp[c.Op].Observe(c.Latency().Seconds())
	}
	if c.OK() {
		return
	}
	class := c.Class.String()
	if c.Class == harness.ClassNone {
		class = classHTTPStatus
		if c.Digest == harness.DigestMismatch && c.Status >= 200 && c.Status < 300 {
			class = classDigestMismatch
		}
	}
	if int(c.Service) <= m.maxServ {
		if ctr := m.errorsByClass[c.Service][class]; ctr != nil {
			ctr.Inc()
			return
		}
	}
	m.errors.WithLabelValues(c.Service.String(), class).Inc()
}

// Sampled sets the gauges the samplers read.
func (m *Metrics) Sampled(s harness.Sample) {
	m.inFlight.Set(float64(s.InFlight))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, n := range s.ServerConns {
		if n >= 0 && i < len(m.services) { // -1: not read at this sample
			m.serverConns.WithLabelValues(m.services[i]).Set(float64(n))
		}
	}
}

// StepDone follows which faults the nemesis holds: a toxic from its adding
// to its removal, a disabled proxy until enabled, the fake service's HTTP
// faults until cleared. A step that failed changed nothing.
func (m *Metrics) StepDone(st harness.StepRecord) {
	if st.Outcome != harness.StepApplied {
		return
	}
	a := st.Step.Action
	m.mu.Lock()
	defer m.mu.Unlock()
	switch a.Kind {
	case harness.ActionAddToxic:
		if a.Toxic != nil {
			m.setFault(a.Service, "toxic:"+a.Toxic.Name, true)
		}
	case harness.ActionRemoveToxic:
		m.setFault(a.Service, "toxic:"+a.ToxicName, false)
	case harness.ActionDisableProxy:
		m.setFault(a.Service, "proxy_disabled", true)
	case harness.ActionEnableProxy:
		m.setFault(a.Service, "proxy_disabled", false)
	case harness.ActionSetHTTPFaults:
		for key := range m.active {
			if key[0] == a.Service && strings.HasPrefix(key[1], "http:") {
				m.setFault(key[0], key[1], false) // SetHTTPFaults replaces them all
			}
		}
		for _, f := range a.HTTPFaults {
			m.setFault(a.Service, "http:"+f.Name, true)
		}
	case harness.ActionClearHTTPFaults:
		for key := range m.active {
			if key[0] == a.Service && strings.HasPrefix(key[1], "http:") {
				m.setFault(key[0], key[1], false)
			}
		}
	}
}

func (m *Metrics) setFault(service, fault string, on bool) {
	key := [2]string{service, fault}
	if on {
		m.active[key] = true
		m.faults.WithLabelValues(service, fault).Set(1)
		return
	}
	delete(m.active, key)
	m.faults.DeleteLabelValues(service, fault)
}

var _ harness.Observer = (*Metrics)(nil)
