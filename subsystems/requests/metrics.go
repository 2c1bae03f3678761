package requests

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// requestOutcomes are the outcome labels: what happened to a request.
var requestOutcomes = []string{"created", "approved", "denied", "dropped", "expired"}

// Metrics count access requests by outcome. (There is no step-up
// authentication yet; its counter belongs here when there is.) A nil
// *Metrics counts nothing.
type Metrics struct {
	requests *prometheus.CounterVec
}

// NewMetrics makes the request series, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_access_requests_total",
		Help: "Just-in-time access requests, by outcome (created, approved, denied, dropped, expired), counted on the replica that made the change."},
		[]string{"outcome"})}
	for _, o := range requestOutcomes {
		m.requests.WithLabelValues(o)
	}
	return m
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.requests}
}

// event counts the access_request.OUTCOME event action.
func (m *Metrics) event(action string) {
	if m == nil {
		return
	}
	o, ok := strings.CutPrefix(action, "access_request.")
	if !ok {
		return
	}
	for _, known := range requestOutcomes {
		if o == known {
			m.requests.WithLabelValues(o).Inc()
			return
		}
	}
}
