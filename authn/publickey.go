package authn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/store"
)

// KeyStore is what public-key authentication reads.
type KeyStore interface {
	KeyByFingerprint(ctx context.Context, fingerprint string) (store.Key, error)
	GetUser(ctx context.Context, name string) (store.User, error)
}

// ErrUnknownKey means no user has registered the offered key.
var ErrUnknownKey = errors.New("public key is not registered")

// ErrKeyExpired means the key's binding (from a device login) expired.
var ErrKeyExpired = errors.New("the key's binding expired")

// lookupTimeout bounds each key lookup in the store.
const lookupTimeout = 5 * time.Second

// ErrStoreUnavailable is a lookup that failed on the store itself (not a
// missing key): the login is refused, and the client is told why.
var ErrStoreUnavailable = errors.New("the store cannot be reached")

// PublicKeys authenticates registered public keys.
type PublicKeys struct {
	Store KeyStore
	Clock func() time.Time
}

func (a *PublicKeys) now() time.Time {
	if a.Clock != nil {
		return a.Clock()
	}
	return time.Now()
}

// Lookup finds the live registration of key. It is used for the query phase
// of publickey auth ("would this key be accepted?") and therefore must not be
// treated as proof of anything: the client has not signed yet.
func (a *PublicKeys) Lookup(ctx context.Context, key ssh.PublicKey) (store.Key, store.User, error) {
	if _, isCert := key.(*ssh.Certificate); isCert {
		// Certificates are handled by the certificate authenticator, never by
		// fingerprint: a cert's fingerprint is not a registration.
		return store.Key{}, store.User{}, fmt.Errorf("certificates are not accepted as registered keys")
	}
	fp := ssh.FingerprintSHA256(key)
	// Bounded: a store that does not answer (etcd without quorum) must
	// refuse the login with a reason, not hold it until the pre-auth
	// deadline.
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	k, err := a.Store.KeyByFingerprint(ctx, fp)
	if errors.Is(err, store.ErrNotFound) {
		return store.Key{}, store.User{}, ErrUnknownKey
	}
	if err != nil {
		return store.Key{}, store.User{}, fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
	}
	// Expired bindings (from an OIDC login) must stop working at expiry
	// even if nobody swept them yet.
	if k.Expired(a.now()) {
		return store.Key{}, store.User{}, fmt.Errorf("public key %s expired at %s: %w", fp, k.Expires.Format(time.RFC3339), ErrKeyExpired)
	}
	u, err := a.Store.GetUser(ctx, k.User)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Key{}, store.User{}, fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
	}
	if err != nil {
		// A key whose user was removed must not authenticate anyone.
		return store.Key{}, store.User{}, fmt.Errorf("public key %s belongs to unknown user %q", fp, k.User)
	}
	return k, u, nil
}

// Verified builds the Principal for a key whose signature the SSH layer has
// verified. It looks the key up again rather than trusting anything recorded
// during the query phase, so the identity is always that of the proven key.
func (a *PublicKeys) Verified(ctx context.Context, key ssh.PublicKey, source string) (Principal, error) {
	k, u, err := a.Lookup(ctx, key)
	if err != nil {
		return Principal{}, err
	}
	p := Principal{
		User:           u.Name,
		DisplayName:    u.DisplayName,
		Groups:         append([]string(nil), u.Groups...),
		Method:         MethodPublicKey,
		AuthTime:       a.now().UTC(),
		KeyFingerprint: k.Fingerprint,
		KeyType:        key.Type(),
		PublicKey:      authorizedKey(key),
		SourceAddr:     source,
	}
	if IsSecurityKey(key) {
		if k.VerifyRequired {
			// Fail closed: the UV flag cannot be read (see
			// ErrVerifyUnsupported).
			return Principal{}, fmt.Errorf("security key %s: %w", k.Fingerprint, ErrVerifyUnsupported)
		}
		// x/crypto verified the signature, and its user-presence flag
		// unless the key was registered with --no-touch-required (the
		// server core passes that waiver in the query phase).
		p.Method = MethodSK
		p.markSecurityKey(a.now(), false)
	}
	return p, nil
}

// authorizedKey is key as one authorized_keys line, without a comment.
func authorizedKey(key ssh.PublicKey) string {
	return string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(key)))
}
