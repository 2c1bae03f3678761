package authn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/store"
)

// Critical options of OpenSSH user certificates that the bastion enforces.
// Every other critical option refuses the certificate.
const (
	OptSourceAddress = "source-address"
	OptForceCommand  = "force-command"
)

// Standard extensions of OpenSSH user certificates (PROTOCOL.certkeys).
// Each grants something; a certificate without one withholds it.
const (
	ExtPTY             = "permit-pty"
	ExtPortForwarding  = "permit-port-forwarding"
	ExtAgentForwarding = "permit-agent-forwarding"
	ExtX11Forwarding   = "permit-X11-forwarding"
	ExtUserRC          = "permit-user-rc"
)

// CertStore is what certificate authentication reads.
type CertStore interface {
	GetUser(ctx context.Context, name string) (store.User, error)
	CertRevoked(ctx context.Context, serial uint64) (store.CertRevocation, bool, error)
}

// Certificates authenticates OpenSSH user certificates signed by a trusted CA.
type Certificates struct {
	CAs   []ssh.PublicKey
	Store CertStore
	Clock func() time.Time
}

func (c *Certificates) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

// Check validates cert for a connection by login (the SSH user name) from
// remoteAddr ("ip:port") and returns the Principal it authenticates. Every
// refusal is an error whose text is the reason, written for the audit log.
//
// Check does not prove that the client holds the certified key: the SSH
// layer must have verified the client's signature with cert (that is, with
// cert.Key) before Check's Principal is trusted, exactly as for PublicKeys.
func (c *Certificates) Check(ctx context.Context, cert *ssh.Certificate, login, remoteAddr string) (Principal, error) {
	if cert == nil || cert.Key == nil || cert.SignatureKey == nil || cert.Signature == nil {
		return Principal{}, errors.New("malformed certificate: key, CA key or signature missing")
	}
	id := certName(cert)

	// A host certificate proves that a machine owns a name; accepting one as
	// a user credential would let any host the CA certified log in.
	if cert.CertType != ssh.UserCert {
		if cert.CertType == ssh.HostCert {
			return Principal{}, fmt.Errorf("%s is a host certificate, not a user certificate", id)
		}
		return Principal{}, fmt.Errorf("%s has unknown certificate type %d", id, cert.CertType)
	}

	// Only the configured CAs may mint identities; anybody can sign a
	// certificate with a key of their own.
	if len(c.CAs) == 0 {
		return Principal{}, fmt.Errorf("%s refused: no user CA is configured", id)
	}
	if !c.trusted(cert.SignatureKey) {
		return Principal{}, fmt.Errorf("%s is signed by CA %s, which is not a trusted user CA",
			id, ssh.FingerprintSHA256(cert.SignatureKey))
	}

	// The validity window bounds how long a leaked certificate is useful.
	now := c.now()
	if err := checkValidity(cert, now, id); err != nil {
		return Principal{}, err
	}

	// OpenSSH refuses certificates with critical options it does not know,
	// because a critical option is a restriction: ignoring one would grant
	// more than the CA meant to (for example verify-required, which we
	// cannot enforce).
	if err := checkCriticalOptions(cert, id); err != nil {
		return Principal{}, err
	}

	user, err := pickPrincipal(cert, login, id)
	if err != nil {
		return Principal{}, err
	}

	// The checks above read fields the client sent; only the CA's signature
	// makes them true. x/crypto's CertChecker verifies it (and repeats the
	// checks above with its own reading, so the two cannot silently
	// disagree). It runs before anything below consults the store, so an
	// unsigned certificate costs no lookups.
	checker := ssh.CertChecker{
		SupportedCriticalOptions: []string{OptSourceAddress, OptForceCommand},
		Clock:                    func() time.Time { return now },
	}
	if err := checker.CheckCert(user, cert); err != nil {
		return Principal{}, fmt.Errorf("%s failed verification against CA %s: %s",
			id, ssh.FingerprintSHA256(cert.SignatureKey), strings.TrimPrefix(err.Error(), "ssh: "))
	}

	// source-address pins where a certificate may be used from, so that a
	// copy taken off a machine is useless elsewhere.
	if list, ok := cert.CriticalOptions[OptSourceAddress]; ok {
		if err := matchSourceAddress(list, remoteAddr); err != nil {
			return Principal{}, fmt.Errorf("%s: %v", id, err)
		}
	}

	// Revocation is how an admin stops a certificate before it expires.
	// Fail closed: if the store cannot say, the certificate is refused.
	rev, revoked, err := c.Store.CertRevoked(ctx, cert.Serial)
	if err != nil {
		return Principal{}, fmt.Errorf("%s refused: cannot check whether it is revoked: %v", id, err)
	}
	if revoked {
		if rev.Reason != "" {
			return Principal{}, fmt.Errorf("%s is revoked: %s", id, rev.Reason)
		}
		return Principal{}, fmt.Errorf("%s is revoked", id)
	}

	// The CA vouches for a name, not for an account: a certificate for a
	// user the bastion does not know (or no longer knows) logs in no one.
	u, err := c.Store.GetUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, fmt.Errorf("user %q named by the certificate does not exist (%s)", user, id)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%s refused: cannot look up user %q: %v", id, user, err)
	}

	p := Principal{
		User:           u.Name,
		DisplayName:    u.DisplayName,
		Groups:         append([]string(nil), u.Groups...),
		Method:         MethodCert,
		AuthTime:       now.UTC(),
		KeyFingerprint: ssh.FingerprintSHA256(cert.Key),
		KeyType:        cert.Type(),
		PublicKey:      authorizedKey(cert.Key),
		SourceAddr:     remoteAddr,
		CertSerial:     cert.Serial,
		CertKeyID:      cert.KeyId,
		ForceCommand:   cert.CriticalOptions[OptForceCommand],
		// Extensions grant; a missing one withholds, as sshd reads them.
		// (no-touch-required is enforced by x/crypto itself when it
		// verifies a security-key signature.)
		NoPortForwarding:  !hasExtension(cert, ExtPortForwarding),
		NoPTY:             !hasExtension(cert, ExtPTY),
		NoAgentForwarding: !hasExtension(cert, ExtAgentForwarding),
		NoX11Forwarding:   !hasExtension(cert, ExtX11Forwarding),
		NoUserRC:          !hasExtension(cert, ExtUserRC),
		CertValidBefore:   validBefore(cert),
	}
	if IsSecurityKey(cert) {
		// A certificate on a security key counts as the key itself: its
		// signature was made by the authenticator (with a touch unless
		// the CA granted no-touch-required). Method stays cert, which
		// every certificate rule reads.
		p.markSecurityKey(now, false)
	}
	return p, nil
}

// certName names a certificate in reasons: `certificate serial 42 (key id "x")`.
func certName(cert *ssh.Certificate) string {
	return fmt.Sprintf("certificate serial %d (key id %q)", cert.Serial, cert.KeyId)
}

// trusted reports whether key is one of the configured CAs, comparing the
// wire encoding, which is what identifies a key.
func (c *Certificates) trusted(key ssh.PublicKey) bool {
	b := key.Marshal()
	for _, ca := range c.CAs {
		if ca != nil && bytes.Equal(ca.Marshal(), b) {
			return true
		}
	}
	return false
}

// checkValidity enforces ValidAfter <= now < ValidBefore, in Unix seconds as
// OpenSSH does; ValidBefore == ssh.CertTimeInfinity means no end.
func checkValidity(cert *ssh.Certificate, now time.Time, id string) error {
	unix := now.Unix()
	// Times beyond int64 are what x/crypto refuses too; they are no real
	// dates, so say so rather than print a nonsense one.
	if cert.ValidAfter > math.MaxInt64 {
		return fmt.Errorf("%s has a malformed start of validity (%d)", id, cert.ValidAfter)
	}
	if unix < int64(cert.ValidAfter) {
		return fmt.Errorf("%s is not valid before %s", id, certTime(cert.ValidAfter))
	}
	if cert.ValidBefore == ssh.CertTimeInfinity {
		return nil
	}
	if cert.ValidBefore > math.MaxInt64 {
		return fmt.Errorf("%s has a malformed end of validity (%d)", id, cert.ValidBefore)
	}
	if unix >= int64(cert.ValidBefore) {
		return fmt.Errorf("%s expired at %s", id, certTime(cert.ValidBefore))
	}
	return nil
}

// validBefore is the end of cert's validity, zero for "forever".
// checkValidity has refused values beyond int64.
func validBefore(cert *ssh.Certificate) time.Time {
	if cert.ValidBefore == ssh.CertTimeInfinity || cert.ValidBefore > math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(int64(cert.ValidBefore), 0).UTC()
}

func certTime(t uint64) string {
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}

// checkCriticalOptions refuses unknown critical options and malformed known
// ones.
func checkCriticalOptions(cert *ssh.Certificate, id string) error {
	var unknown []string
	for name := range cert.CriticalOptions {
		if name != OptSourceAddress && name != OptForceCommand {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s has the critical option(s) %s, which the bastion does not support; "+
			"like OpenSSH, it refuses certificates with critical options it cannot enforce", id, quoteList(unknown))
	}
	// An empty force-command would come out as "no forced command" in the
	// Principal, lifting the restriction the CA asked for.
	if cmd, ok := cert.CriticalOptions[OptForceCommand]; ok && strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("%s has an empty force-command", id)
	}
	return nil
}

// pickPrincipal chooses the bastion user a certificate logs in as: the
// principal equal to login if there is one, else the only principal.
func pickPrincipal(cert *ssh.Certificate, login, id string) (string, error) {
	// OpenSSH treats a certificate without principals as valid for every
	// user. The bastion refuses it: one forgotten -n at the CA would mint a
	// credential for every account, admins included.
	if len(cert.ValidPrincipals) == 0 {
		return "", fmt.Errorf("%s names no principals; the bastion refuses certificates valid for any user "+
			"(have the CA sign it with -n USER)", id)
	}
	for _, p := range cert.ValidPrincipals {
		if p == login {
			return p, nil
		}
	}
	// `ssh bastion` sends the local user name, which need not be the
	// bastion user: an unambiguous certificate decides by itself.
	if len(cert.ValidPrincipals) == 1 {
		return cert.ValidPrincipals[0], nil
	}
	return "", fmt.Errorf("%s is valid for principals %s, none of which is the login %q; "+
		"log in as one of them, e.g. ssh %s@bastion", id, quoteList(cert.ValidPrincipals), login, cert.ValidPrincipals[0])
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// validCIDRChars are the only characters OpenSSH accepts in a
// source-address entry (addr_match_cidr_list).
const validCIDRChars = "0123456789abcdefABCDEF.:/"

// matchSourceAddress checks remoteAddr against a source-address list with
// OpenSSH's semantics: comma-separated addresses and CIDR networks, no
// wildcards or negation; a malformed entry anywhere (including a network
// with host bits set, or an empty entry) makes the whole list fail, and so
// does a remote address that cannot be parsed.
func matchSourceAddress(list, remoteAddr string) error {
	var nets []netip.Prefix
	for _, entry := range strings.Split(list, ",") {
		p, err := parseSourceEntry(entry)
		if err != nil {
			return fmt.Errorf("invalid source-address %q: %v", list, err)
		}
		nets = append(nets, p)
	}
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("source-address %q: cannot parse the client address %q", list, remoteAddr)
	}
	// sshd sees an IPv4 client on a dual-stack socket as ::ffff:a.b.c.d and
	// matches it as IPv4; so do we.
	ip = ip.WithZone("").Unmap()
	for _, n := range nets {
		if n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("source-address %q does not allow connections from %s", list, ip)
}

func parseSourceEntry(entry string) (netip.Prefix, error) {
	if entry == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	if strings.ContainsFunc(entry, func(r rune) bool { return !strings.ContainsRune(validCIDRChars, r) }) {
		return netip.Prefix{}, fmt.Errorf("entry %q contains characters other than an address or network", entry)
	}
	if !strings.Contains(entry, "/") {
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("entry %q is not an address", entry)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(entry)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("entry %q is not a network", entry)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("entry %q has host bits set (did you mean %s?)", entry, p.Masked())
	}
	return p, nil
}

func hasExtension(cert *ssh.Certificate, name string) bool {
	_, ok := cert.Extensions[name]
	return ok
}
