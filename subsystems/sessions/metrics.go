package sessions

import "github.com/prometheus/client_golang/prometheus"

// Kinds of sessions the metrics know; any other kind is counted as
// "other", so that labels stay few.
var metricKinds = []string{"forward", "shell", "kube", "sftp"}

// closeReasons maps the reasons sessions end with to label values. Other
// reasons (free text from a module, or read from another replica's
// record) are counted as "other".
var closeReasons = map[string]string{
	ReasonClientClosed:           "client_closed",
	ReasonTargetClosed:           "target_closed",
	ReasonTTL:                    "ttl_expired",
	ReasonIdle:                   "idle_timeout",
	ReasonRevoked:                "revoked",
	ReasonPolicy:                 "policy_change",
	ReasonShutdown:               "shutdown",
	ReasonReplicaLost:            "replica_lost",
	ReasonStoreLost:              "store_lost",
	ReasonCertExpired:            "certificate_expired",
	"audit unavailable":          "audit_unavailable",
	"store unavailable":          "store_unavailable",
	"dial error":                 "dial_error",
	"target refused the session": "target_refused",
	"recording error":            "recording_error",
}

// Metrics are the session manager's series: open sessions by kind, and
// ended ones by kind and reason. A nil *Metrics counts nothing.
type Metrics struct {
	open   *prometheus.GaugeVec
	closed *prometheus.CounterVec
}

// NewMetrics makes the session series, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bastion_sessions_open",
			Help: "Sessions open on this replica, by kind (forward, shell, kube, sftp)."}, []string{"kind"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_sessions_closed_total",
			Help: "Sessions ended, by kind and reason (client_closed, ttl_expired, idle_timeout, revoked, policy_change, store_lost, replica_lost, ...)."},
			[]string{"kind", "reason"}),
	}
	for _, k := range append(metricKinds, "other") {
		m.open.WithLabelValues(k)
	}
	return m
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.open, m.closed}
}

func kindLabel(kind string) string {
	for _, k := range metricKinds {
		if k == kind {
			return k
		}
	}
	return "other"
}

// reasonLabel is the metric label of a close reason.
func reasonLabel(reason string) string {
	if l, ok := closeReasons[reason]; ok {
		return l
	}
	return "other"
}

func (m *Metrics) opened(kind string) {
	if m != nil {
		m.open.WithLabelValues(kindLabel(kind)).Inc()
	}
}

// ended counts a session that ended; live says whether it was open here.
func (m *Metrics) ended(kind, reason string, live bool) {
	if m == nil {
		return
	}
	if live {
		m.open.WithLabelValues(kindLabel(kind)).Dec()
	}
	m.closed.WithLabelValues(kindLabel(kind), reasonLabel(reason)).Inc()
}
