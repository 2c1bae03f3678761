// Package authn answers "who is this?": it turns what an SSH client proved
// (a public key signature today; certificates and the OIDC device flow
// later) into a Principal, the identity every subsystem receives.
//
// The one rule this package exists to keep: an identity is bound only to a
// key the client proved it holds. Offering a key (the "query" phase of
// publickey auth) proves nothing; see CVE-2024-45337.
package authn
