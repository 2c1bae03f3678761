package subsystems

import (
	"errors"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sshbastion/bastion/authn"
)

// metrics are the server core's series. Labels take only values from
// fixed sets: never a user, a key, an address or a session.
type metrics struct {
	conns    prometheus.Counter
	active   prometheus.Gauge
	sessions prometheus.Gauge
	auth     *prometheus.CounterVec
	authFail *prometheus.CounterVec
	refused  *prometheus.CounterVec
	commands *prometheus.CounterVec
	preauth  *prometheus.CounterVec
}

// Reasons a login fails, for bastion_auth_failures_total.
var authFailReasons = []string{"throttled", "bad_login_name", "unknown_key", "key_expired", "key_refused", "cert_refused",
	"store_unavailable", "audit_unavailable", "device_login_failed", "method_not_accepted", "no_credential",
	"handshake_timeout", "preauth_timeout", "other"}

// Reasons a connection is refused before the handshake.
var preauthRefusals = []string{"full", "per_source", "early_drop"}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		conns:    prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_ssh_connections_total", Help: "TCP connections accepted."}),
		active:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "bastion_ssh_connections_active", Help: "Open connections."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bastion_ssh_sessions_active", Help: "Open session channels."}),
		auth:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_auth_total", Help: "Authentication outcomes."}, []string{"method", "result"}),
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_auth_failures_total",
			Help: "Connections that failed to log in, by method (publickey, cert, oidc, password, none, other) and reason."},
			[]string{"method", "reason"}),
		refused:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_refused_total", Help: "Refused channels, requests, commands and subsystems."}, []string{"kind"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_commands_total", Help: "Exec commands run."}, []string{"command", "result"}),
		preauth: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_preauth_refused_total",
			Help: "Connections dropped before the handshake by the pre-auth limits, by reason (full, per_source, early_drop)."},
			[]string{"reason"}),
	}
	for _, r := range preauthRefusals {
		m.preauth.WithLabelValues(r)
	}
	for _, r := range []string{"throttled", "unknown_key", "no_credential"} {
		m.authFail.WithLabelValues("publickey", r)
	}
	if reg != nil {
		reg.MustRegister(m.conns, m.active, m.sessions, m.auth, m.authFail, m.refused, m.commands, m.preauth)
	}
	return m
}

// registerStartups exports the pre-auth slots in use and their limit.
func registerStartups(reg prometheus.Registerer, s *startups) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bastion_preauth_slots_in_use",
			Help: "Unauthenticated connections holding a pre-auth slot now."}, func() float64 { return float64(s.inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bastion_preauth_slots_limit",
			Help: "Pre-auth slots in all (max_startups; 0: no limit)."}, func() float64 { return float64(s.lim.Max) }),
	)
}

// failMethod is the method label of a failed login: the strongest method
// it tried, from a fixed set (the client names methods freely).
func failMethod(st *connState) string {
	switch {
	case len(st.certRefused) > 0:
		return authn.MethodCert
	case slices.Contains(st.methods, "publickey"):
		return authn.MethodPublicKey
	case slices.Contains(st.methods, "keyboard-interactive") && st.deviceLogin:
		return authn.MethodOIDC
	case slices.Contains(st.methods, "password"):
		return "password"
	case len(st.methods) == 0 || slices.Equal(st.methods, []string{"none"}):
		return "none"
	}
	return "other"
}

// failReasonLabel is the reason label of a failed login; st.mu is held.
func failReasonLabel(st *connState, onlyRefusedCerts bool) string {
	switch {
	case st.throttled:
		return "throttled"
	case st.badLogin:
		return "bad_login_name"
	case onlyRefusedCerts:
		return "cert_refused"
	case st.deviceFailure != "":
		return "device_login_failed"
	case strings.HasPrefix(st.failure, "no key exchange within"):
		return "handshake_timeout"
	case strings.HasPrefix(st.failure, "pre-auth deadline"):
		return "preauth_timeout"
	case st.keyFailureKind != "":
		return st.keyFailureKind
	}
	switch why := st.failReason(); {
	case strings.Contains(why, "is not accepted (publickey only)"):
		return "method_not_accepted"
	case strings.Contains(why, "method none is not accepted"):
		return "no_credential"
	case strings.Contains(why, "device login"):
		return "device_login_failed"
	case why == "":
		return "no_credential"
	}
	return "other"
}

// keyFailureKind is the reason label of a refused public key.
func keyFailureKind(err error) string {
	switch {
	case errors.Is(err, authn.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, authn.ErrKeyExpired):
		return "key_expired"
	case errors.Is(err, authn.ErrStoreUnavailable):
		return "store_unavailable"
	}
	return "key_refused"
}
