package pooledclient

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are shared by the clients of a pool and labelled by service (and
// host for connections). They are registered on the registry the caller
// passes (WithRegisterer) or on a private one, never on the global default.
type metrics struct {
	connsActive   *prometheus.GaugeVec
	connsIdle     *prometheus.GaugeVec
	connsOpened   *prometheus.CounterVec
	connsClosed   *prometheus.CounterVec
	connErrors    *prometheus.CounterVec
	poolWait      *prometheus.HistogramVec
	poolExhausted *prometheus.CounterVec
	retries       *prometheus.CounterVec
	retriesDenied *prometheus.CounterVec
	replays       *prometheus.CounterVec
	breakerState  *prometheus.GaugeVec
	breakerTrans  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "pooledclient"
	m := &metrics{
		connsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "connections_active",
			Help: "Open connections carrying at least one call."}, []string{"service", "host"}),
		connsIdle: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "connections_idle",
			Help: "Open connections carrying no call."}, []string{"service", "host"}),
		connsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_opened_total",
			Help: "Connections dialled."}, []string{"service", "host"}),
		connsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_closed_total",
			Help: "Connections closed."}, []string{"service", "host"}),
		connErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connection_errors_total",
			Help: "Failed attempts by error kind (dial, refused, tls, timeout, reset, eof, retired, other)."}, []string{"service", "kind"}),
		poolWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "pool_wait_seconds",
			Help:    "Time a call waited for a connection slot.",
			Buckets: []float64{0, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"service"}),
		poolExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "pool_exhausted_total",
			Help: "Calls that failed with ErrPoolExhausted."}, []string{"service"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "retries_total",
			Help: "Retries sent, by reason (status code or error kind)."}, []string{"service", "reason"}),
		retriesDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "retries_denied_total",
			Help: "Retries not sent, by reason (budget, deadline, retry_after)."}, []string{"service", "reason"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "transport_replays_total",
			Help: "Silent replays net/http's transport attempted, by outcome: allowed (nothing of the request had been written) or refused (it had been: Do's retry loop decides)."}, []string{"service", "outcome"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open."}, []string{"service"}),
		breakerTrans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "breaker_transitions_total",
			Help: "Circuit breaker state changes."}, []string{"service", "from", "to"}),
	}
	var err error
	m.connsActive = register(reg, m.connsActive, &err)
	m.connsIdle = register(reg, m.connsIdle, &err)
	m.connsOpened = register(reg, m.connsOpened, &err)
	m.connsClosed = register(reg, m.connsClosed, &err)
	m.connErrors = register(reg, m.connErrors, &err)
	m.poolWait = register(reg, m.poolWait, &err)
	m.poolExhausted = register(reg, m.poolExhausted, &err)
	m.retries = register(reg, m.retries, &err)
	m.retriesDenied = register(reg, m.retriesDenied, &err)
	m.replays = register(reg, m.replays, &err)
	m.breakerState = register(reg, m.breakerState, &err)
	m.breakerTrans = register(reg, m.breakerTrans, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or reuses the collector already registered under
// the same name (two pools sharing one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if *errp != nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		*errp = err
	}
	return c
}
