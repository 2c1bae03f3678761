package audit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Log's Prometheus series. They belong to whoever made
// them (NewMetrics) and registers them (Collectors): the package keeps no
// global state. A nil *Metrics counts nothing.
type Metrics struct {
	appended  prometheus.Counter
	failures  prometheus.Counter
	conflicts prometheus.Counter
	lost      prometheus.Counter
	batch     prometheus.Histogram
	commit    prometheus.Histogram
}

// NewMetrics makes the audit series, unregistered.
func NewMetrics() *Metrics {
	return &Metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_audit_events_appended_total",
			Help: "Audit events durably stored (acknowledged to their callers)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_audit_append_failures_total",
			Help: "Audit events the store failed to take; their callers got an error and, for actions not yet taken, refused them."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_audit_chain_conflicts_total",
			Help: "Batches re-chained because another replica appended first."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_audit_lost_events_total",
			Help: "Audit events that could not be made durable for actions that had already happened."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bastion_audit_batch_size_events",
			Help:    "Events per group commit (one store write).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}), // 1 .. 1024
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bastion_audit_commit_duration_seconds",
			Help:    "Time to commit one batch to the store, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}), // 0.5 ms .. 16 s
	}
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.appended, m.failures, m.conflicts, m.lost, m.batch, m.commit}
}

// LostEvents is the counter of the events reported to Log.Lost.
func (m *Metrics) LostEvents() prometheus.Counter {
	if m == nil {
		return nil
	}
	return m.lost
}

func (m *Metrics) committed(events int, took time.Duration) {
	if m == nil {
		return
	}
	m.batch.Observe(float64(events))
	m.commit.Observe(took.Seconds())
}

func (m *Metrics) stored(n int) {
	if m != nil {
		m.appended.Add(float64(n))
	}
}

func (m *Metrics) failed(n int) {
	if m != nil {
		m.failures.Add(float64(n))
	}
}

func (m *Metrics) conflict() {
	if m != nil {
		m.conflicts.Inc()
	}
}
