package sftp

import "github.com/prometheus/client_golang/prometheus"

// sftpOps are the operation labels; they are the ops the handlers audit
// (sftp.OP events). Any other is counted as "other".
var sftpOps = map[string]bool{"read": true, "write": true, "open": true, "list": true, "setstat": true, "rename": true,
	"rmdir": true, "mkdir": true, "remove": true, "link": true, "symlink": true}

// Direction labels of file bytes, as the forward module's.
const (
	upload   = "client_to_target"
	download = "target_to_client"
)

// Metrics are the sftp module's series: file operations by op and result,
// and file bytes by direction. A nil *Metrics counts nothing.
type Metrics struct {
	ops      *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	up, down prometheus.Counter
	refusals prometheus.Counter
}

// NewMetrics makes the sftp series, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_sftp_operations_total",
			Help: "SFTP file operations on hosts, by op (read, write, list, mkdir, rename, remove, ...) and result (ok, error)."},
			[]string{"op", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_sftp_bytes_total",
			Help: "SFTP file bytes, by direction (client_to_target: uploads, target_to_client: downloads)."}, []string{"direction"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_sftp_refused_total",
			Help: "SFTP accesses to a host refused by policy."}),
	}
	m.up, m.down = m.bytes.WithLabelValues(upload), m.bytes.WithLabelValues(download)
	return m
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.ops, m.bytes, m.refusals}
}

// op counts a finished operation.
func (m *Metrics) op(op string, err error) {
	if m == nil {
		return
	}
	if !sftpOps[op] {
		op = "other"
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.ops.WithLabelValues(op, result).Inc()
}

func (m *Metrics) uploaded(n int) {
	if m != nil && n > 0 {
		m.up.Add(float64(n))
	}
}

func (m *Metrics) downloaded(n int) {
	if m != nil && n > 0 {
		m.down.Add(float64(n))
	}
}

func (m *Metrics) refused() {
	if m != nil {
		m.refusals.Inc()
	}
}
