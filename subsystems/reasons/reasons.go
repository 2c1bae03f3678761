// Package reasons holds the stable reason codes of the bastion's
// refusals and session ends: short snake_case words that scripts, alerts
// and `-o json` read, and that never change once released. The messages
// beside them (what was refused, why, how to get access) are for people
// and may be reworded; the codes may not.
//
// Audit events carry the code in Details["reason_code"] (their Reason
// stays the readable text, which older tools and tests read).
package reasons

// DetailKey is the audit event detail that holds the code.
const DetailKey = "reason_code"

// The codes.
const (
	// ReBACDenied: the policy does not grant the relation (act, view...).
	ReBACDenied = "rebac_denied"
	// PolicyError: the policy could not be evaluated; refused (fail closed).
	PolicyError = "policy_error"
	// NotAResource: the name is not a Resource the caller may see.
	NotAResource = "not_a_resource"
	// PortNotAllowed: the port is not one of the Resource's.
	PortNotAllowed = "port_not_allowed"
	// CertRestricted: the login certificate withholds the permission
	// (permit-port-forwarding, permit-pty, ...).
	CertRestricted = "cert_restricted"
	// StepUpRequired: the session needs a recent strong login the
	// caller does not have.
	StepUpRequired = "step_up_required"
	// StepUpExpired: a live session outlived its step-up and was cut.
	StepUpExpired = "step_up_expired"
	// SessionExpired: the session reached its TTL.
	SessionExpired = "session_expired"
	// IdleTimeout: the session was idle too long.
	IdleTimeout = "idle_timeout"
	// Revoked: an admin killed the session.
	Revoked = "revoked"
	// PolicyChange: the relation that granted the session went away.
	PolicyChange = "policy_change"
	// CertExpired: the login certificate expired.
	CertExpired = "cert_expired"
	// ClientClosed, TargetClosed: an end of a session nobody refused.
	ClientClosed = "client_closed"
	TargetClosed = "target_closed"
	// Shutdown, ReplicaLost, StoreLost: the bastion itself ended it.
	Shutdown    = "shutdown"
	ReplicaLost = "replica_lost"
	StoreLost   = "store_lost"
	// KubeRBACDenied: the cluster's own RBAC refused the impersonated
	// user (the bastion's policy allowed it).
	KubeRBACDenied = "kube_rbac_denied"
	// BadWorkload: an -L target below a kube Resource names no pod or
	// service; NoWorkload: it names one that does not exist or has no
	// ready pod.
	BadWorkload = "bad_workload"
	NoWorkload  = "no_workload"
	// NoEgress: an -R names no kube Resource that offers egress, or the
	// cluster cannot take the Service.
	NoEgress = "no_egress"
	// AuditUnavailable, StoreUnavailable: refused because what must
	// record it could not.
	AuditUnavailable = "audit_unavailable"
	StoreUnavailable = "store_unavailable"
)

// sessionEnds maps the session close reasons (package sessions, whose
// texts are kept as they were) to their codes.
var sessionEnds = map[string]string{
	"client closed":       ClientClosed,
	"target closed":       TargetClosed,
	"ttl expired":         SessionExpired,
	"idle timeout":        IdleTimeout,
	"revoked":             Revoked,
	"policy change":       PolicyChange,
	"shutdown":            Shutdown,
	"replica lost":        ReplicaLost,
	"store lost":          StoreLost,
	"certificate expired": CertExpired,
	"step_up_expired":     StepUpExpired,
	"audit unavailable":   AuditUnavailable,
	"store unavailable":   StoreUnavailable,
}

// OfSessionEnd returns the code of a session close reason, "" for one
// that has none.
func OfSessionEnd(reason string) string { return sessionEnds[reason] }

// All lists every code, for documentation and tests.
func All() []string {
	return []string{ReBACDenied, PolicyError, NotAResource, PortNotAllowed, CertRestricted, StepUpRequired, StepUpExpired,
		SessionExpired, IdleTimeout, Revoked, PolicyChange, CertExpired, ClientClosed, TargetClosed, Shutdown, ReplicaLost,
		StoreLost, AuditUnavailable, StoreUnavailable}
}
