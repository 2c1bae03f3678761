package kube

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// kubeVerbs are the verb labels; a request's verb comes from its method
// and path, so anything else is counted as "other".
var kubeVerbs = map[string]bool{"get": true, "list": true, "watch": true, "create": true, "update": true, "patch": true,
	"delete": true, "deletecollection": true, "proxy": true}

// Metrics are the kube module's series: requests through the tunnels by
// verb and status code, and their latency by verb. A nil *Metrics counts
// nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	tunnels  prometheus.Gauge
}

// NewMetrics makes the kube series, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_kube_requests_total",
			Help: "Kubernetes API requests through kube tunnels, by verb and HTTP status code (refusals by the bastion included)."},
			[]string{"verb", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bastion_kube_request_duration_seconds",
			Help:    "Latency of Kubernetes API requests through kube tunnels, by verb; watches and upgraded connections (exec, port-forward) are left out.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, // 1 ms .. 16 s
			[]string{"verb"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bastion_kube_tunnels_active",
			Help: "Kube tunnel connections (ssh -L to a kube Resource) open now."}),
	}
	for v := range kubeVerbs {
		m.latency.WithLabelValues(v)
	}
	return m
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.requests, m.latency, m.tunnels}
}

func verbLabel(verb string) string {
	if kubeVerbs[verb] {
		return verb
	}
	return "other"
}

// request counts one request and, unless it streamed, its latency.
func (m *Metrics) request(verb string, status int, took time.Duration) {
	if m == nil {
		return
	}
	v := verbLabel(verb)
	m.requests.WithLabelValues(v, strconv.Itoa(status)).Inc()
	if v != "watch" && status != http.StatusSwitchingProtocols {
		m.latency.WithLabelValues(v).Observe(took.Seconds())
	}
}

// tunnel counts an open tunnel; the returned func counts its end.
func (m *Metrics) tunnel() func() {
	if m == nil {
		return func() {}
	}
	m.tunnels.Inc()
	return m.tunnels.Dec
}
