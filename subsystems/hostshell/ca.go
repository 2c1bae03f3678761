package hostshell

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/store"
)

const caSecret = "user-ca-ed25519"

// CA is the bastion's SSH user certificate authority.
type CA struct {
	signer gossh.Signer
	now    func() time.Time
}

// LoadOrCreateCA returns the CA kept in the store, creating it on first use.
func LoadOrCreateCA(ctx context.Context, st store.Secrets) (*CA, error) {
	raw, err := st.GetSecret(ctx, caSecret)
	if errors.Is(err, store.ErrNotFound) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := gossh.MarshalPrivateKey(priv, "bastion user CA")
		if err != nil {
			return nil, err
		}
		// Create-if-absent: replicas starting together agree on one CA.
		if raw, err = st.CreateSecret(ctx, caSecret, pem.EncodeToMemory(block)); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	s, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("stored user CA is unreadable: %w", err)
	}
	return &CA{signer: s, now: time.Now}, nil
}

// Key is the CA's public key.
func (c *CA) Key() gossh.PublicKey { return c.signer.PublicKey() }

// PublicKey returns the line targets put in TrustedUserCAKeys.
func (c *CA) PublicKey() string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(c.signer.PublicKey()))) + " bastion-user-ca"
}

// Issue returns a signer holding a fresh key and a certificate for login,
// valid for ttl, carrying exactly perms (see onwardPermissions). The key
// never leaves the process; the short validity is what makes a leaked
// certificate nearly worthless.
func (c *CA) Issue(user, login, sessionID string, ttl time.Duration, perms gossh.Permissions) (gossh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	cert, err := c.SignUserKey(key.PublicKey(), fmt.Sprintf("bastion user=%s session=%s", user, sessionID), 0, []string{login}, ttl, perms)
	if err != nil {
		return nil, err
	}
	return gossh.NewCertSigner(cert, key)
}

// SignUserKey certifies key as a user certificate for principals, valid
// from a minute ago for ttl, carrying exactly perms. It is the one place
// the user CA signs: the onward certificates of Issue and those users
// take home with `cert`. The caller decides the principals and must only
// pass a key its holder proved (the `cert` command signs the key the
// connection authenticated with, nothing else).
func (c *CA) SignUserKey(key gossh.PublicKey, keyID string, serial uint64, principals []string, ttl time.Duration, perms gossh.Permissions) (*gossh.Certificate, error) {
	// A certificate over a certificate means nothing to sshd, and one
	// without a principal would be valid for every account.
	if _, ok := key.(*gossh.Certificate); ok {
		return nil, errors.New("cannot certify a certificate; give the key it certifies")
	}
	if len(principals) == 0 {
		return nil, errors.New("a user certificate needs at least one principal")
	}
	now := c.now()
	cert := &gossh.Certificate{
		Key:             key,
		Serial:          serial,
		CertType:        gossh.UserCert,
		KeyId:           keyID,
		ValidPrincipals: append([]string(nil), principals...),
		// A minute of backdating absorbs clock skew with the target.
		ValidAfter:  uint64(now.Add(-time.Minute).Unix()),
		ValidBefore: uint64(now.Add(ttl).Unix()),
		Permissions: perms,
	}
	if err := cert.SignCert(rand.Reader, c.signer); err != nil {
		return nil, err
	}
	return cert, nil
}
