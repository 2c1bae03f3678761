package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/subsystems/forward"
	"github.com/sshbastion/bastion/subsystems/kube"
	"github.com/sshbastion/bastion/subsystems/requests"
	"github.com/sshbastion/bastion/subsystems/sessions"
	sftpsub "github.com/sshbastion/bastion/subsystems/sftp"
)

// metricSet holds the series of the modules and the policy engine, made
// and registered once in the /metrics registry (the server core and the
// audit log register theirs in newServer and newAudit). A zero metricSet
// counts nothing: every package's nil *Metrics is a no-op.
type metricSet struct {
	policy   *policy.Metrics
	sessions *sessions.Metrics
	forward  *forward.Metrics
	kube     *kube.Metrics
	sftp     *sftpsub.Metrics
	requests *requests.Metrics
	store    *storeHealth
}

// newMetricSet makes every module's series and registers them in reg.
func newMetricSet(reg prometheus.Registerer) *metricSet {
	m := &metricSet{
		policy: policy.NewMetrics(), sessions: sessions.NewMetrics(), forward: forward.NewMetrics(),
		kube: kube.NewMetrics(), sftp: sftpsub.NewMetrics(), requests: requests.NewMetrics(), store: newStoreHealth(),
	}
	for _, cs := range [][]prometheus.Collector{m.policy.Collectors(), m.sessions.Collectors(), m.forward.Collectors(),
		m.kube.Collectors(), m.sftp.Collectors(), m.requests.Collectors(), m.store.collectors()} {
		reg.MustRegister(cs...)
	}
	return m
}

// storeHealth is what storeWatch sees of the store: whether its last read
// of the revision worked, and how many failed.
type storeHealth struct {
	up       prometheus.Gauge
	failures prometheus.Counter
}

func newStoreHealth() *storeHealth {
	h := &storeHealth{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bastion_store_up",
			Help: "1 if the last store health check (a read of the revision, every second) worked, else 0; /healthz answers 503 meanwhile."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_store_health_check_failures_total",
			Help: "Store health checks (reads of the revision) that failed."}),
	}
	h.up.Set(1) // serve read the store to get this far
	return h
}

func (h *storeHealth) collectors() []prometheus.Collector {
	if h == nil {
		return nil
	}
	return []prometheus.Collector{h.up, h.failures}
}

// checked records the result of one health check.
func (h *storeHealth) checked(err error) {
	if h == nil {
		return
	}
	if err != nil {
		h.up.Set(0)
		h.failures.Inc()
		return
	}
	h.up.Set(1)
}
