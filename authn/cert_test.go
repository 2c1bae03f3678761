package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/store"
)

var certNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeCertStore is an in-memory CertStore.
type fakeCertStore struct {
	users   map[string]store.User
	revoked map[uint64]store.CertRevocation
	userErr error
	revErr  error
}

func (f *fakeCertStore) GetUser(_ context.Context, name string) (store.User, error) {
	if f.userErr != nil {
		return store.User{}, f.userErr
	}
	u, ok := f.users[name]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

func (f *fakeCertStore) CertRevoked(_ context.Context, serial uint64) (store.CertRevocation, bool, error) {
	if f.revErr != nil {
		return store.CertRevocation{}, false, f.revErr
	}
	r, ok := f.revoked[serial]
	return r, ok, nil
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type certFixture struct {
	ca, userKey ssh.Signer
	store       *fakeCertStore
	auth        *Certificates
}

func newCertFixture(t *testing.T) *certFixture {
	f := &certFixture{ca: newSigner(t), userKey: newSigner(t), store: &fakeCertStore{
		users: map[string]store.User{
			"alice": {Name: "alice", DisplayName: "Alice", Groups: []string{"ops"}},
			"bob":   {Name: "bob"},
		},
		revoked: map[uint64]store.CertRevocation{},
	}}
	f.auth = &Certificates{CAs: []ssh.PublicKey{newSigner(t).PublicKey(), f.ca.PublicKey()}, Store: f.store,
		Clock: func() time.Time { return certNow }}
	return f
}

// cert returns a user certificate for alice valid an hour either side of
// certNow, changed by mod before signing with signer (the fixture's CA if nil).
func (f *certFixture) cert(t *testing.T, signer ssh.Signer, mod func(*ssh.Certificate)) *ssh.Certificate {
	t.Helper()
	c := &ssh.Certificate{
		Key: f.userKey.PublicKey(), Serial: 42, CertType: ssh.UserCert, KeyId: "alice-laptop",
		ValidPrincipals: []string{"alice"},
		ValidAfter:      uint64(certNow.Add(-time.Hour).Unix()),
		ValidBefore:     uint64(certNow.Add(time.Hour).Unix()),
		Permissions:     ssh.Permissions{CriticalOptions: map[string]string{}, Extensions: map[string]string{"permit-pty": ""}},
	}
	if mod != nil {
		mod(c)
	}
	if signer == nil {
		signer = f.ca
	}
	if err := c.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	return c
}

func wantRefused(t *testing.T, err error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a refusal mentioning %q", substrs)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("refusal %q does not mention %q", err, s)
		}
	}
}

func TestCertAccepted(t *testing.T) {
	f := newCertFixture(t)
	ctx := context.Background()

	// The login picks among several principals.
	c := f.cert(t, nil, func(c *ssh.Certificate) { c.ValidPrincipals = []string{"alice", "bob"} })
	p, err := f.auth.Check(ctx, c, "bob", "10.0.0.5:50022")
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "bob" {
		t.Fatalf("login bob among principals alice,bob: user %q", p.User)
	}

	// A single principal decides whatever the login.
	c = f.cert(t, nil, nil)
	p, err = f.auth.Check(ctx, c, "root", "10.0.0.5:50022")
	if err != nil {
		t.Fatal(err)
	}
	want := Principal{User: "alice", DisplayName: "Alice", Groups: []string{"ops"}, Method: MethodCert, AuthTime: certNow,
		KeyFingerprint: ssh.FingerprintSHA256(f.userKey.PublicKey()), KeyType: ssh.CertAlgoED25519v01,
		SourceAddr: "10.0.0.5:50022", CertSerial: 42, CertKeyID: "alice-laptop",
		// this certificate's only extension is permit-pty
		NoPortForwarding: true, NoAgentForwarding: true, NoX11Forwarding: true, NoUserRC: true,
		CertValidBefore: certNow.Add(time.Hour),
		// the certified key, which `cert` may sign, not the certificate
		PublicKey: authorizedKey(f.userKey.PublicKey())}
	if p.Marshal() != want.Marshal() {
		t.Fatalf("principal\n got  %s\n want %s", p.Marshal(), want.Marshal())
	}
	c = f.cert(t, nil, func(c *ssh.Certificate) {
		c.Extensions = map[string]string{"permit-port-forwarding": ""}
	})
	if p, err = f.auth.Check(ctx, c, "root", "10.0.0.5:50022"); err != nil || p.NoPortForwarding {
		t.Fatalf("permit-port-forwarding: %v, NoPortForwarding=%v", err, p.NoPortForwarding)
	}

	// No end of validity.
	c = f.cert(t, nil, func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity })
	if _, err := f.auth.Check(ctx, c, "alice", "10.0.0.5:1"); err != nil {
		t.Fatalf("ValidBefore infinity: %v", err)
	}
}

func TestCertRefused(t *testing.T) {
	f := newCertFixture(t)
	ctx := context.Background()
	check := func(c *ssh.Certificate, login string) error {
		_, err := f.auth.Check(ctx, c, login, "10.0.0.5:50022")
		return err
	}

	wantRefused(t, check(f.cert(t, newSigner(t), nil), "alice"), "not a trusted user CA")
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) { c.CertType = ssh.HostCert }), "alice"), "host certificate")
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) {
		c.ValidBefore = uint64(certNow.Unix())
	}), "alice"), `certificate serial 42 (key id "alice-laptop") expired at 2030-01-02T03:04:05Z`)
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) {
		c.ValidAfter = uint64(certNow.Add(time.Minute).Unix())
	}), "alice"), "not valid before 2030-01-02T03:05:05Z")
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) {
		c.ValidPrincipals = []string{"alice", "bob"}
	}), "carol"), `"alice", "bob"`, `login "carol"`, "ssh alice@bastion")
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) { c.ValidPrincipals = nil }), "alice"), "names no principals")
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) {
		c.ValidPrincipals = []string{"mallory"}
	}), "mallory"), `user "mallory" named by the certificate does not exist`)
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) {
		c.CriticalOptions["verify-required"] = ""
	}), "alice"), `"verify-required"`, "does not support")
	wantRefused(t, check(f.cert(t, nil, func(c *ssh.Certificate) {
		c.CriticalOptions[OptForceCommand] = " "
	}), "alice"), "empty force-command")

	// A certificate changed after signing (here: given another principal)
	// must fail the CA signature.
	c := f.cert(t, nil, nil)
	c.ValidPrincipals = []string{"bob"}
	wantRefused(t, check(c, "bob"), "signature does not verify")

	// No CA configured: nothing is trusted.
	noCA := &Certificates{Store: f.store, Clock: f.auth.Clock}
	_, err := noCA.Check(ctx, f.cert(t, nil, nil), "alice", "10.0.0.5:1")
	wantRefused(t, err, "no user CA is configured")

	wantRefused(t, check(nil, "alice"), "malformed certificate")
}

func TestCertRevoked(t *testing.T) {
	f := newCertFixture(t)
	ctx := context.Background()
	f.store.revoked[42] = store.CertRevocation{Serial: 42, Reason: "lost laptop"}
	_, err := f.auth.Check(ctx, f.cert(t, nil, nil), "alice", "10.0.0.5:1")
	wantRefused(t, err, `certificate serial 42 (key id "alice-laptop") is revoked: lost laptop`)

	// Another serial from the same CA still works.
	c := f.cert(t, nil, func(c *ssh.Certificate) { c.Serial = 43 })
	if _, err := f.auth.Check(ctx, c, "alice", "10.0.0.5:1"); err != nil {
		t.Fatalf("serial 43: %v", err)
	}
}

func TestCertStoreErrorsRefuse(t *testing.T) {
	f := newCertFixture(t)
	ctx := context.Background()
	boom := errors.New("disk on fire")
	f.store.revErr = boom
	_, err := f.auth.Check(ctx, f.cert(t, nil, nil), "alice", "10.0.0.5:1")
	wantRefused(t, err, "cannot check whether it is revoked", "disk on fire")
	f.store.revErr, f.store.userErr = nil, boom
	_, err = f.auth.Check(ctx, f.cert(t, nil, nil), "alice", "10.0.0.5:1")
	wantRefused(t, err, `cannot look up user "alice"`, "disk on fire")
}

func TestCertSourceAddress(t *testing.T) {
	f := newCertFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		list, remote string
		ok           bool
		why          string
	}{
		{"10.0.0.5", "10.0.0.5:50022", true, ""},
		{"10.0.0.0/8", "10.200.1.2:1", true, ""},
		{"192.168.0.0/16,10.0.0.5", "10.0.0.5:1", true, ""},
		{"10.0.0.0/8", "[::ffff:10.0.0.5]:1", true, ""}, // IPv4 client on a dual-stack socket
		{"2001:db8::/32", "[2001:db8::1]:22", true, ""},
		{"10.0.0.5", "10.0.0.6:1", false, `source-address "10.0.0.5" does not allow connections from 10.0.0.6`},
		{"10.0.0.0/8", "11.0.0.1:1", false, "does not allow connections from 11.0.0.1"},
		{"10.0.0.0/8", "[2001:db8::1]:1", false, "does not allow"},
		// A malformed entry anywhere spoils the list, even if another
		// entry matches (as in OpenSSH).
		{"10.0.0.5,10.0.0.1/8", "10.0.0.5:1", false, "host bits set"},
		{"10.0.0.5,", "10.0.0.5:1", false, "empty entry"},
		{"10.0.0.*", "10.0.0.5:1", false, "characters other than"},
		{"!10.0.0.6,10.0.0.5", "10.0.0.5:1", false, "characters other than"},
		{"10.0.0.5", "not-an-address", false, "cannot parse the client address"},
	} {
		c := f.cert(t, nil, func(c *ssh.Certificate) { c.CriticalOptions[OptSourceAddress] = tc.list })
		_, err := f.auth.Check(ctx, c, "alice", tc.remote)
		if tc.ok && err != nil {
			t.Errorf("source-address %q from %s: %v", tc.list, tc.remote, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("source-address %q from %s: got %v, want a refusal mentioning %q", tc.list, tc.remote, err, tc.why)
		}
	}
}

// Every standard extension grants; each missing one withholds.
func TestCertExtensions(t *testing.T) {
	f := newCertFixture(t)
	all := map[string]string{ExtPTY: "", ExtPortForwarding: "", ExtAgentForwarding: "", ExtX11Forwarding: "", ExtUserRC: ""}
	flags := func(p Principal) map[string]bool {
		return map[string]bool{ExtPTY: p.NoPTY, ExtPortForwarding: p.NoPortForwarding, ExtAgentForwarding: p.NoAgentForwarding,
			ExtX11Forwarding: p.NoX11Forwarding, ExtUserRC: p.NoUserRC}
	}
	for missing := range all {
		c := f.cert(t, nil, func(c *ssh.Certificate) {
			c.Extensions = map[string]string{}
			for k, v := range all {
				if k != missing {
					c.Extensions[k] = v
				}
			}
		})
		p, err := f.auth.Check(context.Background(), c, "alice", "10.0.0.5:1")
		if err != nil {
			t.Fatal(err)
		}
		for ext, withheld := range flags(p) {
			if withheld != (ext == missing) {
				t.Errorf("without %s: %s withheld=%v", missing, ext, withheld)
			}
		}
	}
	c := f.cert(t, nil, func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity })
	if p, err := f.auth.Check(context.Background(), c, "alice", "10.0.0.5:1"); err != nil || !p.CertValidBefore.IsZero() {
		t.Fatalf("a certificate valid forever: %v, CertValidBefore %s", err, p.CertValidBefore)
	}
}

func TestCertForceCommand(t *testing.T) {
	f := newCertFixture(t)
	c := f.cert(t, nil, func(c *ssh.Certificate) { c.CriticalOptions[OptForceCommand] = "whoami -o json" })
	p, err := f.auth.Check(context.Background(), c, "alice", "10.0.0.5:1")
	if err != nil {
		t.Fatal(err)
	}
	if p.ForceCommand != "whoami -o json" {
		t.Fatalf("ForceCommand %q", p.ForceCommand)
	}
}

// TestCertFromSSHKeygen checks a certificate signed by OpenSSH's own
// ssh-keygen, so the critical options are encoded the way real CAs do it.
func TestCertFromSSHKeygen(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatalf("ssh-keygen (OpenSSH client) is needed: %v", err)
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ca, user := filepath.Join(dir, "ca"), filepath.Join(dir, "user")
	run("-q", "-t", "ed25519", "-N", "", "-f", ca)
	run("-q", "-t", "ed25519", "-N", "", "-f", user)
	run("-q", "-s", ca, "-I", "alice@laptop", "-n", "alice", "-z", "7", "-V", "-1h:+1h",
		"-O", "source-address=10.0.0.0/8,192.0.2.1", "-O", "force-command=audit --since 1h", user+".pub")

	read := func(path string) ssh.PublicKey {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cert, ok := read(user + "-cert.pub").(*ssh.Certificate)
	if !ok {
		t.Fatal("ssh-keygen did not write a certificate")
	}
	f := newCertFixture(t)
	f.auth.CAs = []ssh.PublicKey{read(ca + ".pub")}
	f.auth.Clock = time.Now
	p, err := f.auth.Check(context.Background(), cert, "alice", "10.1.2.3:4000")
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "alice" || p.CertSerial != 7 || p.CertKeyID != "alice@laptop" || p.ForceCommand != "audit --since 1h" {
		t.Fatalf("principal from an ssh-keygen certificate: %+v", p)
	}
	if p.KeyFingerprint != ssh.FingerprintSHA256(read(user+".pub")) {
		t.Fatalf("fingerprint %s is not the certified key's", p.KeyFingerprint)
	}
	_, err = f.auth.Check(context.Background(), cert, "alice", "192.0.2.2:4000")
	wantRefused(t, err, "does not allow connections from 192.0.2.2")
}
