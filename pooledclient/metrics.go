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

// The names of the pool metrics teams already graph and alert on for HTTP
// clients; the client exposes these four under exactly these names (with
// WithMetricsNamespace, prefixed), so that existing dashboards find them.
const (
	MetricActiveConnections = "http_pool_active_connections" // gauge {service, host}
	MetricIdleConnections   = "http_pool_idle_connections"   // gauge {service, host}
	MetricPoolWait          = "http_pool_wait_seconds"       // histogram {service}
	MetricConnectionErrors  = "http_connection_errors_total" // counter {service, error_type}
)

// PoolWaitBuckets are http_pool_wait_seconds' buckets, 1ms to 5s.
var PoolWaitBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}

func newMetrics(reg prometheus.Registerer, namespace string) (*metrics, error) {
	ns := namespace
	m := &metrics{
		connsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: MetricActiveConnections,
			Help: "Open connections carrying at least one call."}, []string{"service", "host"}),
		connsIdle: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: MetricIdleConnections,
			Help: "Open connections carrying no call."}, []string{"service", "host"}),
		connsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_pool_connections_opened_total",
			Help: "Connections dialled."}, []string{"service", "host"}),
		connsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_pool_connections_closed_total",
			Help: "Connections closed."}, []string{"service", "host"}),
		connErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: MetricConnectionErrors,
			Help: "Failed attempts by error type (dial, refused, tls, timeout, reset, eof, retired, other)."}, []string{"service", "error_type"}),
		poolWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: MetricPoolWait,
			Help:    "Time a call waited for a connection slot.",
			Buckets: PoolWaitBuckets}, []string{"service"}),
		poolExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_pool_exhausted_total",
			Help: "Calls that failed with ErrPoolExhausted."}, []string{"service"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_client_retries_total",
			Help: "Retries sent, by reason (status code or error kind)."}, []string{"service", "reason"}),
		retriesDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_client_retries_denied_total",
			Help: "Retries not sent, by reason (budget, deadline, retry_after)."}, []string{"service", "reason"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_client_transport_replays_total",
			Help: "Silent replays net/http's transport attempted, by outcome: allowed (nothing of the request had been written) or refused (it had been: Do's retry loop decides)."}, []string{"service", "outcome"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "http_client_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open."}, []string{"service"}),
		breakerTrans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_client_breaker_transitions_total",
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
