package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/store"
)

// skKey builds an sk-ssh-ed25519@openssh.com public key from its wire form
// (x/crypto has no constructor for one).
func skKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wire := ssh.Marshal(struct {
		Name        string
		KeyBytes    []byte
		Application string
	}{ssh.KeyAlgoSKED25519, pub, "ssh:"})
	k, err := ssh.ParsePublicKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type memKeys struct {
	k store.Key
	u store.User
}

func (m memKeys) KeyByFingerprint(_ context.Context, fp string) (store.Key, error) {
	if fp != m.k.Fingerprint {
		return store.Key{}, store.ErrNotFound
	}
	return m.k, nil
}
func (m memKeys) GetUser(_ context.Context, name string) (store.User, error) { return m.u, nil }

func TestSecurityKeyLoginIsStrong(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	k := skKey(t)
	if !IsSecurityKey(k) {
		t.Fatal("IsSecurityKey(sk-ssh-ed25519) = false")
	}
	plain, _, _ := ed25519.GenerateKey(rand.Reader)
	pk, _ := ssh.NewPublicKey(plain)
	if IsSecurityKey(pk) {
		t.Fatal("IsSecurityKey(ssh-ed25519) = true")
	}
	if IsSecurityKey(&ssh.Certificate{Key: pk}) || !IsSecurityKey(&ssh.Certificate{Key: k}) {
		t.Fatal("a certificate is a security key exactly when its key is")
	}
	rec := store.Key{Fingerprint: ssh.FingerprintSHA256(k), User: "bob"}
	a := &PublicKeys{Store: memKeys{k: rec, u: store.User{Name: "bob"}}, Clock: func() time.Time { return now }}
	p, err := a.Verified(context.Background(), k, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != MethodSK || p.ACR != ACRSK || !p.MFA || !p.AuthTime.Equal(now) || !p.Strong() {
		t.Fatalf("sk principal: %+v", p)
	}
	// --verify-required fails closed: the UV flag cannot be read.
	rec.VerifyRequired = true
	a.Store = memKeys{k: rec, u: store.User{Name: "bob"}}
	if _, err := a.Verified(context.Background(), k, "127.0.0.1:1"); !errors.Is(err, ErrVerifyUnsupported) {
		t.Fatalf("a --verify-required key: %v", err)
	}
	// A plain key login is not strong, however fresh.
	if (Principal{Method: MethodPublicKey, AuthTime: now}).Strong() {
		t.Fatal("a plain key login is strong")
	}
}

func TestAMRIsMFA(t *testing.T) {
	if AMRIsMFA([]string{"pwd"}) || AMRIsMFA(nil) || !AMRIsMFA([]string{"pwd", "otp"}) || !AMRIsMFA([]string{"hwk"}) {
		t.Fatal("AMRIsMFA misreads RFC 8176 values")
	}
}
