package forward

import "github.com/prometheus/client_golang/prometheus"

// Direction labels of forwarded bytes.
const (
	ClientToTarget = "client_to_target"
	TargetToClient = "target_to_client"
)

// Metrics are the forward module's series: open forwards, forwarded
// bytes by direction, and forward attempts by result. A nil *Metrics
// counts nothing.
type Metrics struct {
	active   prometheus.Gauge
	bytes    *prometheus.CounterVec
	up, down prometheus.Counter
	opens    *prometheus.CounterVec
}

// Results of a forward attempt.
var forwardResults = []string{"opened", "refused", "dial_error", "unavailable"}

// NewMetrics makes the forward series, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bastion_forwards_active",
			Help: "TCP forwards (ssh -L, -W, ProxyJump) open now."}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_forward_bytes_total",
			Help: "Bytes carried by TCP forwards, by direction (client_to_target, target_to_client)."}, []string{"direction"}),
		opens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_forwards_total",
			Help: "Forward requests, by result (opened, refused, dial_error, unavailable: no session or audit record)."}, []string{"result"}),
	}
	m.up, m.down = m.bytes.WithLabelValues(ClientToTarget), m.bytes.WithLabelValues(TargetToClient)
	for _, r := range forwardResults {
		m.opens.WithLabelValues(r)
	}
	return m
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.active, m.bytes, m.opens}
}

func (m *Metrics) result(r string) {
	if m != nil {
		m.opens.WithLabelValues(r).Inc()
	}
}

// open counts a forward that carries bytes now; the returned func counts
// its end.
func (m *Metrics) open() func() {
	if m == nil {
		return func() {}
	}
	m.result("opened")
	m.active.Inc()
	return m.active.Dec
}

// counters returns the byte counters of both directions, each also
// counting into the session (nil metrics: the session only).
func (m *Metrics) counters(in, out func(int)) (up, down func(int)) {
	if m == nil {
		return in, out
	}
	return func(n int) { in(n); m.up.Add(float64(n)) }, func(n int) { out(n); m.down.Add(float64(n)) }
}
