// Package authn answers "who is this?": it turns what an SSH client proved
// (a public key signature, an OpenSSH user certificate from a trusted CA,
// or an OIDC device login) into a Principal, the identity every subsystem
// receives.
//
// The one rule this package exists to keep: an identity is bound only to a
// key the client proved it holds. Offering a key (the "query" phase of
// publickey auth) proves nothing; see CVE-2024-45337.
package authn
