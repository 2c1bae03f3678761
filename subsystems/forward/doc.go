// Package forward serves direct-tcpip channels (ssh -L, -W and ProxyJump)
// to named Resources only. Each forward is gated by the relation act,
// runs inside a session (TTL, idle timeout, revocation, policy re-check),
// and is audited on open and close with byte counts.
package forward
