package subsystems

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/policy"
)

// The session kinds a decision is taken for: the request context's
// session_kind.
const (
	KindSSH  = "ssh"  // a shell (on the bastion or a host) or an exec command
	KindTCP  = "tcp"  // a TCP forward: -L, -W, -J
	KindKube = "kube" // a kube tunnel, kubeconfig, each kube-API request
	KindSFTP = "sftp" // sftp and scp
)

// ForwardKind is the session kind of a forward to a Resource of kind
// resourceKind: a kube tunnel for kube Resources, tcp otherwise.
func ForwardKind(resourceKind string) string {
	if resourceKind == "kube" {
		return KindKube
	}
	return KindTCP
}

// DecisionContext returns ctx carrying the request context of a policy
// decision taken now for the caller of ctx (its authn.Principal) over a
// session of kind. Every decision point wraps the context of its Check
// with it, so that model conditions can read where, when and how the
// caller came in.
func DecisionContext(ctx context.Context, kind string) context.Context {
	p, _ := authn.FromContext(ctx)
	return DecisionContextFor(ctx, p, kind, time.Now())
}

// DecisionContextFor is DecisionContext for principal p at time now: the
// session sweeper re-checks a live session with the facts it was opened
// with, at the time of the sweep.
func DecisionContextFor(ctx context.Context, p authn.Principal, kind string, now time.Time) context.Context {
	return policy.WithRequest(ctx, policy.Request{Context: RequestContext(p, kind, now)})
}

// RequestContext is the request context of a decision for p over a
// session of kind at now, under the documented parameter names:
//
//	source_ip     ipaddress  the client's address
//	current_time  timestamp  now
//	auth_method   string     publickey, cert, oidc, sk
//	auth_time     timestamp  the last strong login (a security key, an IdP login or a
//	                         remembered step-up), else when the connection authenticated
//	auth_age      duration   current_time - auth_time
//	acr           string     the acr of that login ("" without one)
//	mfa           bool       that login had a second factor
//	session_kind  string     ssh, tcp, kube, sftp
//
// A fact the bastion does not know (no parseable source address, no auth
// time) is left out: a condition that needs it then fails to evaluate,
// which denies.
func RequestContext(p authn.Principal, kind string, now time.Time) map[string]any {
	// auth_time, auth_age, acr and mfa describe one login: the last
	// strong one when there is one (as step-up requirements see it, so a
	// model's condition and a step_up rule agree), else this connection's.
	at, acr, mfa := p.AuthTime, p.ACR, p.MFA
	if l := p.LastStrong; l != nil && !l.At.IsZero() {
		at, acr, mfa = l.At, l.ACR, l.MFA
	}
	rc := map[string]any{
		policy.ParamCurrentTime: now.UTC(),
		policy.ParamAuthMethod:  p.Method,
		policy.ParamACR:         acr,
		policy.ParamMFA:         mfa,
	}
	if a, ok := sourceIP(p.SourceAddr); ok {
		rc[policy.ParamSourceIP] = a
	}
	if !at.IsZero() {
		rc[policy.ParamAuthTime] = at.UTC()
		rc[policy.ParamAuthAge] = now.Sub(at)
	}
	if kind != "" {
		rc[policy.ParamSessionKind] = kind
	}
	return rc
}

// sourceIP parses the client address the server recorded ("ip:port", or
// a bare address).
func sourceIP(addr string) (netip.Addr, bool) {
	if addr == "" {
		return netip.Addr{}, false
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Explainer is the part of the policy engine that says why a decision
// went as it did (policy.Engine has it).
type Explainer interface {
	Explain(ctx context.Context, subject, relation, object string) (policy.Explanation, error)
}

// UnmetConditions says, for a denied decision, which conditional grants
// would have applied had their conditions held: "; condition office of
// resource:web-1#act@user:alice is not met (cidr="10.0.0.0/8",
// source_ip=127.0.0.2)". It is "" when pol cannot explain or no condition
// was involved. Refusals append it so that a user refused by a condition
// learns which one, and with what values.
func UnmetConditions(ctx context.Context, pol any, subject, relation, object string) string {
	x, ok := pol.(Explainer)
	if !ok {
		return ""
	}
	ex, err := x.Explain(ctx, subject, relation, object)
	if err != nil || ex.Allowed {
		return ""
	}
	s := ""
	for i, c := range ex.Unmet() {
		if i == 3 {
			s += "; ..."
			break
		}
		s += "; " + c.String()
	}
	return s
}
