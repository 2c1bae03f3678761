package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
)

// liar offers one public key and signs with another key's private half:
// the CVE-2024-45337 pattern against servers that bind the key from the
// query phase.
type liar struct {
	offered gossh.PublicKey
	signs   gossh.Signer
}

func (l liar) PublicKey() gossh.PublicKey { return l.offered }
func (l liar) Sign(r io.Reader, data []byte) (*gossh.Signature, error) {
	return l.signs.Sign(r, data)
}

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A key the client never signed with is never bound: neither one offered
// and signed for by another key, nor one offered after the proven one.
func TestOIDCNeverBindsAnUnprovenKey(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{})
	b, alice := oidcBastion(t, o)
	a, bKey, c := newSigner(t), newSigner(t), newSigner(t)
	addr := net.JoinHostPort("127.0.0.1", b.Port)

	// 1. Offer A, sign with B: the signature does not verify, the
	// connection fails, nothing starts.
	_, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "x", Timeout: 10 * time.Second,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(liar{offered: a.PublicKey(), signs: bKey})},
		HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err == nil {
		t.Fatal("a client that signed with another key than it offered logged in")
	}

	// 2. Prove A, offer C (never signed with), then finish the device
	// login: only A is bound.
	var shown string
	cfg := &gossh.ClientConfig{User: "x", Timeout: 10 * time.Second, HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Auth: []gossh.AuthMethod{
			gossh.PublicKeys(a, c),
			gossh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				if len(questions) == 0 {
					return nil, nil
				}
				shown = questions[0]
				if err := o.Approve(t, harness.UserCode(t, shown), "bob"); err != nil {
					return nil, err
				}
				return []string{""}, nil
			}),
		}}
	conn, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("device login over x/crypto: %v", err)
	}
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("whoami")
	conn.Close()
	if err != nil || !strings.Contains(string(out), "bob@example.com") {
		t.Fatalf("whoami: %v\n%s", err, out)
	}
	r := b.SSH(alice, "keys", "list", "bob@example.com", "-o", "json")
	mustOK(t, r, "keys list")
	for fp, want := range map[string]bool{
		gossh.FingerprintSHA256(a.PublicKey()):    true,
		gossh.FingerprintSHA256(bKey.PublicKey()): false,
		gossh.FingerprintSHA256(c.PublicKey()):    false,
	} {
		if strings.Contains(r.Stdout, fp) != want {
			t.Errorf("key %s bound=%v, want %v\n%s", fp, !want, want, r.Stdout)
		}
	}
}

// With the IdP down, device logins say so, and registered keys still work.
func TestOIDCProviderDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	b, alice := admin(t, "oidc:\n  issuer: http://"+dead+"\n  client_id: bastion\n")
	k := harness.NewKey(t, t.TempDir(), "k")
	x := b.SSHInteractive(&k, nil, "whoami")
	r := x.Wait(t)
	if r.Code == 0 || !harness.Contains(r.Stderr, "identity provider cannot be reached", "registered key or certificate") {
		t.Fatalf("device login with the IdP down: exit %d\n%s", r.Code, r.Stderr)
	}
	if x.Prompted() {
		t.Fatal("a code was prompted for although the IdP is down")
	}
	mustOK(t, b.SSH(alice, "whoami"), "public-key login with the IdP down")
}
