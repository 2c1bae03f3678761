package authn

import (
	"errors"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// ACRs of security-key logins: "sk" asserts user presence (a touch),
// "sk-uv" also user verification (a PIN or biometric checked by the
// authenticator).
const (
	ACRSK   = "sk"
	ACRSKUV = "sk-uv"
)

// NoTouchExtension is the Permissions extension (and certificate
// extension) with which golang.org/x/crypto/ssh waives the user-presence
// flag it otherwise demands of every security-key signature, as sshd's
// no-touch-required does.
const NoTouchExtension = "no-touch-required"

// ErrVerifyUnsupported refuses a key registered with --verify-required:
// golang.org/x/crypto/ssh (v0.58, and v0.59) verifies security-key
// signatures and checks their user-presence flag, but hands the
// user-verification flag to no callback, so the bastion cannot tell a
// signature with a PIN from one without. Accepting the key anyway would
// silently drop the requirement its owner registered; refusing it is the
// fail-closed reading (the same reason a certificate with the
// verify-required critical option is refused).
var ErrVerifyUnsupported = errors.New("the key is registered with --verify-required, but this bastion cannot see the user-verification flag " +
	"of security-key signatures (its SSH library does not pass it on), so it refuses the key rather than accept it unverified; " +
	"an admin can register it again without --verify-required")

// IsSecurityKey reports whether key is a FIDO2 security key
// (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com) or a
// certificate on one.
func IsSecurityKey(key ssh.PublicKey) bool {
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key
	}
	if key == nil {
		return false
	}
	switch key.Type() {
	case ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return true
	}
	return false
}

// markSecurityKey records that p's login signed with a security key whose
// signature x/crypto verified: a fresh strong login, made at "at". verified
// says the signature asserted user verification.
func (p *Principal) markSecurityKey(at time.Time, verified bool) {
	p.AuthTime = at.UTC()
	p.ACR, p.MFA = ACRSK, true
	// RFC 8176: hwk is proof of possession of a hardware-secured key,
	// user presence is a test that a person was there.
	p.AMR = []string{"hwk", "user"}
	if verified {
		p.ACR = ACRSKUV
		p.AMR = append(p.AMR, "pin")
	}
}

// Strong reports whether p's own login was a strong one: a security key
// (or a certificate on one), or a login at the identity provider. A plain
// key or certificate proves only that a file was at hand.
func (p Principal) Strong() bool {
	return p.MFA || p.Method == MethodSK || p.Method == MethodOIDC
}

// mfaAMR are the amr values (RFC 8176) that say a login used more than a
// password.
var mfaAMR = []string{"mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm", "pin", "sms", "tel"}

// AMRIsMFA reports whether an amr claim names a second factor.
func AMRIsMFA(amr []string) bool {
	for _, a := range amr {
		if slices.Contains(mfaAMR, a) {
			return true
		}
	}
	return false
}
