package policy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics time the engine's Check (every subsystem's policy gate). A nil
// *Metrics times nothing.
type Metrics struct {
	check                   *prometheus.HistogramVec
	allow, deny, errorValue prometheus.Observer
}

// NewMetrics makes the policy series, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{check: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bastion_policy_check_duration_seconds",
		Help:    "Time to answer one policy Check, by result (allow, deny, error).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}, // 50 µs .. 1.6 s
		[]string{"result"})}
	m.allow, m.deny, m.errorValue = m.check.WithLabelValues("allow"), m.check.WithLabelValues("deny"), m.check.WithLabelValues("error")
	return m
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.check}
}

// WithMetrics times every Check in m.
func WithMetrics(m *Metrics) Option { return func(e *Engine) { e.metrics = m } }

func (m *Metrics) observe(start time.Time, ok bool, err error) {
	if m == nil {
		return
	}
	o := m.deny
	switch {
	case err != nil:
		o = m.errorValue
	case ok:
		o = m.allow
	}
	o.Observe(time.Since(start).Seconds())
}
