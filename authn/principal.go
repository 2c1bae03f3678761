package authn

import (
	"context"
	"encoding/json"
	"time"
)

// Auth methods recorded in Principal.Method.
const (
	MethodPublicKey = "publickey"
	MethodCert      = "cert"
	MethodOIDC      = "oidc"
	// MethodSK is a login with a FIDO2 security key (sk-ssh-ed25519,
	// sk-ecdsa-sha2-nistp256), or a certificate on one.
	MethodSK = "sk"
)

// Principal is the authenticated caller. It is created once per connection,
// after authentication succeeded, and never changes afterwards.
type Principal struct {
	User        string    `json:"user"`
	DisplayName string    `json:"display_name,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
	Method      string    `json:"method"`
	AuthTime    time.Time `json:"auth_time"`
	ACR         string    `json:"acr,omitempty"`
	// AMR is the OIDC amr claim of the login (or of the step-up that
	// refreshed it); MFA says the login was a strong one (a security key,
	// or an IdP that reported a second factor).
	AMR []string `json:"amr,omitempty"`
	MFA bool     `json:"mfa,omitempty"`
	// LastStrong is the caller's last strong login as known when this
	// request was handed to a module: this login if it was strong, else a
	// step-up remembered on the key or the connection (nil: none). The
	// request context of policy conditions (auth_time, auth_age, acr, mfa)
	// and step-up requirements read the same login.
	LastStrong     *StrongLogin `json:"last_strong,omitempty"`
	KeyFingerprint string       `json:"key_fingerprint,omitempty"`
	KeyType        string       `json:"key_type,omitempty"`
	SourceAddr     string       `json:"source_addr,omitempty"`
	SessionID      string       `json:"session_id,omitempty"`
	// Certificate logins: the certificate's serial and key id, and its
	// force-command critical option, which replaces whatever the client
	// asks to run.
	CertSerial   uint64 `json:"cert_serial,omitempty"`
	CertKeyID    string `json:"cert_key_id,omitempty"`
	ForceCommand string `json:"force_command,omitempty"`
	// NoPortForwarding is set for a certificate without the
	// permit-port-forwarding extension: as with sshd, its holder may not
	// open forwards (ssh -L, -W, -J, kube tunnels).
	NoPortForwarding bool `json:"no_port_forwarding,omitempty"`
	// The other standard extensions, read the same way (set when the
	// certificate lacks permit-pty, permit-agent-forwarding,
	// permit-X11-forwarding, permit-user-rc). Logins without a certificate
	// leave them false. The onward certificate of host shells never
	// carries more than these allow (see hostshell).
	NoPTY             bool `json:"no_pty,omitempty"`
	NoAgentForwarding bool `json:"no_agent_forwarding,omitempty"`
	NoX11Forwarding   bool `json:"no_x11_forwarding,omitempty"`
	NoUserRC          bool `json:"no_user_rc,omitempty"`
	// CertValidBefore is the end of the certificate's validity (zero: a
	// certificate valid forever, or no certificate). The connection is cut
	// then unless the bastion is configured otherwise.
	CertValidBefore time.Time `json:"cert_valid_before,omitempty"`
	// PublicKey is the key whose signature this connection verified, as
	// an authorized_keys line (for a certificate login, the certified key
	// itself, not the certificate); empty for a login without a key. It
	// is what `cert` signs: only a key proven here, never one that was
	// merely offered or named (CVE-2024-45337).
	PublicKey string `json:"public_key,omitempty"`
}

// StrongLogin is a strong login: how, when, its acr and whether it had a
// second factor.
type StrongLogin struct {
	Method string    `json:"method"`
	At     time.Time `json:"auth_time"`
	ACR    string    `json:"acr,omitempty"`
	MFA    bool      `json:"mfa"`
}

// Subject is the principal as a ReBAC subject, "user:<name>".
func (p Principal) Subject() string { return "user:" + p.User }

// Marshal encodes the principal for transport inside ssh.Permissions.
func (p Principal) Marshal() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// UnmarshalPrincipal is the inverse of Marshal.
func UnmarshalPrincipal(s string) (Principal, error) {
	var p Principal
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}

type ctxKey struct{}

// WithPrincipal returns a context carrying p. The context carries request
// data only, never services.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal stored by WithPrincipal.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
