package commands

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/hostshell"
)

// certSetup is tenancy() with the user CA and four ssh Resources: web-1
// (login root), web-2 (no login: users are themselves), web-3 (login
// deploy) and a tcp one; bob may act on web-1 only, and view web-3.
func certSetup(t *testing.T) (Deps, *memAudit, *hostshell.CA) {
	t.Helper()
	d, st := tenancy(t)
	ca, err := hostshell.LoadOrCreateCA(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	log := &memAudit{}
	d.Audit, d.Certs, d.Clock = log, CertIssuing{Signer: ca, TTL: 10 * time.Minute, MaxTTL: time.Hour}, time.Now
	for _, args := range [][]string{
		{"add", "web-1", "--kind", "ssh", "--address", "10.0.0.5:22", "--project", "payments", "--login", "root"},
		{"add", "web-2", "--kind", "ssh", "--address", "10.0.0.6:22", "--project", "payments"},
		{"add", "web-3", "--kind", "ssh", "--address", "10.0.0.7:22", "--project", "payments", "--login", "deploy"},
		{"add", "db", "--kind", "tcp", "--address", "10.0.0.8:5432", "--project", "payments"},
	} {
		if _, err := runCmd(t, newResources, d, "root", args...); err != nil {
			t.Fatal(args, err)
		}
	}
	grant(t, d, "resource:web-1#act@user:bob", "resource:db#act@user:bob", "resource:web-3#view@user:bob")
	return d, log, ca
}

func grant(t *testing.T, d Deps, tuples ...string) {
	t.Helper()
	for _, tu := range tuples {
		if _, err := runCmd(t, newTuples, d, "root", "add", tu); err != nil {
			t.Fatal(tu, err)
		}
	}
}

// keyPrincipal is user logged in with a fresh ed25519 key.
func keyPrincipal(t *testing.T, user string) (authn.Principal, gossh.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return authn.Principal{User: user, Method: authn.MethodPublicKey, KeyFingerprint: gossh.FingerprintSHA256(k), KeyType: k.Type(),
		PublicKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))}, k
}

// runAs runs build as p and returns stdout and stderr.
func runAs(t *testing.T, build func(*env) *cobra.Command, d Deps, p authn.Principal, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{ctx: context.Background(), p: p, deps: d, in: strings.NewReader(""), out: &out, errOut: &errOut}
	cmd := build(e)
	cmd.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format")
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// parseCert reads the certificate line `cert` printed.
func parseCert(t *testing.T, out string) *gossh.Certificate {
	t.Helper()
	k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(out))
	if err != nil {
		t.Fatalf("not a certificate line: %v\n%s", err, out)
	}
	c, ok := k.(*gossh.Certificate)
	if !ok {
		t.Fatalf("not a certificate: %s", out)
	}
	return c
}

func TestCertSignsTheLoginKeyForActableLogins(t *testing.T) {
	d, log, ca := certSetup(t)
	bob, key := keyPrincipal(t, "bob")
	out, _, err := runAs(t, newCert, d, bob)
	if err != nil {
		t.Fatal(err)
	}
	c := parseCert(t, out)
	// web-1's login only: web-3 is viewable, not actable; db is tcp.
	if !slices.Equal(c.ValidPrincipals, []string{"root"}) {
		t.Fatalf("principals %v, want [root]", c.ValidPrincipals)
	}
	if !bytes.Equal(c.Key.Marshal(), key.Marshal()) || !bytes.Equal(c.SignatureKey.Marshal(), ca.Key().Marshal()) {
		t.Fatal("not the login key signed by the user CA")
	}
	if c.CertType != gossh.UserCert || c.Serial == 0 || c.KeyId != "bastion:bob:"+itoa(c.Serial) {
		t.Fatalf("type %d serial %d key id %q", c.CertType, c.Serial, c.KeyId)
	}
	now := time.Now()
	if va := time.Unix(int64(c.ValidAfter), 0); !va.Before(now) || va.Before(now.Add(-2*time.Minute)) {
		t.Errorf("valid after %s: want slightly in the past", va)
	}
	if vb := time.Unix(int64(c.ValidBefore), 0); vb.Sub(now) > 10*time.Minute+time.Second || vb.Sub(now) < 9*time.Minute {
		t.Errorf("valid before %s: want 10m from now", vb)
	}
	if _, ok := c.Extensions["permit-pty"]; !ok || len(c.CriticalOptions) != 0 {
		t.Errorf("extensions %v critical options %v", c.Extensions, c.CriticalOptions)
	}
	for _, never := range []string{"permit-agent-forwarding", "permit-port-forwarding", "permit-X11-forwarding"} {
		if _, ok := c.Extensions[never]; ok {
			t.Errorf("grants %s", never)
		}
	}
	// sshd accepts it for root, and for no one else.
	checker := gossh.CertChecker{IsUserAuthority: func(k gossh.PublicKey) bool { return bytes.Equal(k.Marshal(), ca.Key().Marshal()) }}
	if _, err := checker.Authenticate(connMeta("root"), c); err != nil {
		t.Errorf("root: %v", err)
	}
	if _, err := checker.Authenticate(connMeta("deploy"), c); err == nil {
		t.Error("deploy accepted")
	}
	// Audited with its serial and key id, before it was printed.
	ev := log.events[len(log.events)-1]
	if ev.Action != "cert.issue" || ev.Actor != "bob" || ev.Details["serial"] != itoa(c.Serial) || ev.Details["key_id"] != c.KeyId ||
		ev.Details["principals"] != "root" || ev.Details["fingerprint"] != bob.KeyFingerprint {
		t.Fatalf("event %+v", ev)
	}
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

type connMeta string

func (c connMeta) User() string        { return string(c) }
func (connMeta) SessionID() []byte     { return nil }
func (connMeta) ClientVersion() []byte { return nil }
func (connMeta) ServerVersion() []byte { return nil }
func (connMeta) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (connMeta) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }

func TestCertPrincipals(t *testing.T) {
	d, _, _ := certSetup(t)
	bob, _ := keyPrincipal(t, "bob")
	// Named Resources: refused without act, and as for a missing one
	// without view.
	_, _, err := runAs(t, newCert, d, bob, "web-3")
	if err == nil || !strings.Contains(err.Error(), "user:bob lacks act on resource:web-3") || !strings.Contains(err.Error(), "request create web-3") {
		t.Fatalf("web-3 (view only): %v", err)
	}
	_, _, hidden := runAs(t, newCert, d, bob, "web-2")
	_, _, missing := runAs(t, newCert, d, bob, "nope")
	if hidden == nil || missing == nil || strings.ReplaceAll(hidden.Error(), "web-2", "X") != strings.ReplaceAll(missing.Error(), "nope", "X") {
		t.Fatalf("not viewable %v / missing %v: want the same refusal", hidden, missing)
	}
	if _, _, err := runAs(t, newCert, d, bob, "db"); err == nil || !strings.Contains(err.Error(), "tcp Resource") {
		t.Fatalf("db: %v", err)
	}
	out, _, err := runAs(t, newCert, d, bob, "web-1")
	if err != nil || !slices.Equal(parseCert(t, out).ValidPrincipals, []string{"root"}) {
		t.Fatalf("web-1: %v %s", err, out)
	}

	// Once bob may also act on web-2, where he is bob, root is withheld:
	// the certificate would make him root on web-2 too.
	grant(t, d, "resource:web-2#act@user:bob")
	out, stderr, err := runAs(t, newCert, d, bob)
	if err != nil || !slices.Equal(parseCert(t, out).ValidPrincipals, []string{"bob"}) || !strings.Contains(stderr, "login root withheld") {
		t.Fatalf("web-1 + web-2: %v %q %s", err, stderr, out)
	}
	if _, _, err := runAs(t, newCert, d, bob, "web-1"); err == nil || !strings.Contains(err.Error(), "also log you in as root on web-2") {
		t.Fatalf("web-1 alone with web-2 actable: %v", err)
	}
	out, _, err = runAs(t, newCert, d, bob, "web-2")
	if err != nil || !slices.Equal(parseCert(t, out).ValidPrincipals, []string{"bob"}) {
		t.Fatalf("web-2: %v", err)
	}

	// Someone who may act on nothing gets nothing.
	carol, _ := keyPrincipal(t, "carol")
	if _, _, err := runAs(t, newCert, d, carol); err == nil || !strings.Contains(err.Error(), "may act on no ssh Resource") {
		t.Fatalf("carol: %v", err)
	}
}

func TestCertTTL(t *testing.T) {
	d, _, _ := certSetup(t)
	bob, _ := keyPrincipal(t, "bob")
	out, _, err := runAs(t, newCert, d, bob, "--ttl", "30m")
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(time.Unix(int64(parseCert(t, out).ValidBefore), 0)); left < 29*time.Minute || left > 30*time.Minute+time.Second {
		t.Fatalf("--ttl 30m: valid %s", left)
	}
	for _, c := range []struct{ ttl, want string }{{"2h", "above the cap of 1h0m0s"}, {"0s", "positive"}, {"-5m", "positive"}} {
		if out, _, err := runAs(t, newCert, d, bob, "--ttl", c.ttl); err == nil || !strings.Contains(err.Error(), c.want) || out != "" {
			t.Errorf("--ttl %s: %v %q", c.ttl, err, out)
		}
	}
	// A certificate login's certificate bounds the one it buys.
	certUser := bob
	certUser.Method, certUser.CertValidBefore = authn.MethodCert, time.Now().Add(3*time.Minute)
	out, stderr, err := runAs(t, newCert, d, certUser)
	if err != nil || time.Until(time.Unix(int64(parseCert(t, out).ValidBefore), 0)) > 3*time.Minute || !strings.Contains(stderr, "until your login certificate expires") {
		t.Fatalf("cert login: %v %q", err, stderr)
	}
}

func TestCertRefusals(t *testing.T) {
	d, log, _ := certSetup(t)
	// No key in this login (device flow without one, or no key at all).
	for _, p := range []authn.Principal{{User: "bob", Method: authn.MethodOIDC}, {User: "bob"}} {
		_, _, err := runAs(t, newCert, d, p)
		if err == nil || !strings.Contains(err.Error(), "A key login is needed") {
			t.Errorf("%s: %v", p.Method, err)
		}
	}
	// A key other than the one the login recorded.
	bob, _ := keyPrincipal(t, "bob")
	other, _ := keyPrincipal(t, "bob")
	bob.KeyFingerprint = other.KeyFingerprint
	if _, _, err := runAs(t, newCert, d, bob); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	// force-command: no unrestricted certificate in exchange.
	forced, _ := keyPrincipal(t, "bob")
	forced.Method, forced.ForceCommand = authn.MethodCert, "cert"
	if _, _, err := runAs(t, newCert, d, forced); err == nil || !strings.Contains(err.Error(), "forces the command") {
		t.Errorf("force-command: %v", err)
	}
	// No event, no certificate.
	ok, _ := keyPrincipal(t, "bob")
	d.Audit = failingAudit{log}
	if out, _, err := runAs(t, newCert, d, ok); err == nil || out != "" || !strings.Contains(err.Error(), "none was issued") {
		t.Fatalf("audit down: %v %q", err, out)
	}
	// An output it cannot print: nothing is signed or audited.
	d.Audit = log
	n := len(log.events)
	if _, _, err := runAs(t, newCert, d, ok, "-o", "yaml"); err == nil || len(log.events) != n {
		t.Fatalf("-o yaml: %v, %d events", err, len(log.events)-n)
	}
	// Without a CA.
	d.Certs.Signer = nil
	if _, _, err := runAs(t, newCert, d, ok); err == nil {
		t.Fatal("issued without a CA")
	}
}

type failingAudit struct{ *memAudit }

func (failingAudit) Append(context.Context, store.Event) (store.Event, error) {
	return store.Event{}, errors.New("disk full")
}

func TestCertJSON(t *testing.T) {
	d, _, _ := certSetup(t)
	bob, _ := keyPrincipal(t, "bob")
	out, _, err := runAs(t, newCert, d, bob, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got issuedCert
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := parseCert(t, got.Certificate)
	if got.Serial != c.Serial || got.KeyID != c.KeyId || !slices.Equal(got.Principals, c.ValidPrincipals) ||
		got.ValidBefore.Unix() != int64(c.ValidBefore) {
		t.Fatalf("json %+v does not describe its certificate", got)
	}
}

func TestSSHConfigWithCertificates(t *testing.T) {
	d, _, _ := certSetup(t)
	bob, _ := keyPrincipal(t, "bob")
	out, _, err := runAs(t, newSSHConfig, d, bob)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Host web-1\n", "User root\n", "ProxyJump bastion\n",
		"ssh bastion cert > ~/.ssh/id_ed25519-cert.pub\n", "  CertificateFile ~/.ssh/id_ed25519-cert.pub\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "web-3") || strings.Contains(out, "Host db") {
		t.Errorf("config lists what bob may not act on or is not ssh:\n%s", out)
	}
	out, _, err = runAs(t, newSSHConfig, d, bob, "-o", "json")
	var got sshConfigJSON
	if err != nil || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := sshHost{Name: "web-1", HostName: "web-1", Port: 22, User: "root", ProxyJump: "bastion", CertificateFile: "~/.ssh/id_ed25519-cert.pub"}
	if len(got.Hosts) != 1 || got.Hosts[0] != want || got.Bastion.Name != "bastion" || got.Bastion.Port != 22 {
		t.Fatalf("config -o json: %+v", got)
	}
	// Nothing to reach: [] (not null); no CA: no certificate lines.
	carol, _ := keyPrincipal(t, "carol")
	d.Certs.Signer = nil
	out, _, _ = runAs(t, newSSHConfig, d, carol, "-o", "json")
	if !strings.Contains(out, `"hosts": []`) {
		t.Fatalf("empty config -o json:\n%s", out)
	}
	out, _, _ = runAs(t, newSSHConfig, d, bob)
	if strings.Contains(out, "CertificateFile") || strings.Contains(out, "cert >") {
		t.Fatalf("certificate lines without a CA:\n%s", out)
	}
}

func TestCertFileFor(t *testing.T) {
	for _, c := range []struct {
		p    authn.Principal
		want string
	}{
		{authn.Principal{KeyType: "ssh-ed25519"}, "~/.ssh/id_ed25519-cert.pub"},
		{authn.Principal{KeyType: "ecdsa-sha2-nistp256"}, "~/.ssh/id_ecdsa-cert.pub"},
		{authn.Principal{KeyType: "ssh-rsa"}, "~/.ssh/id_rsa-cert.pub"},
		{authn.Principal{KeyType: "sk-ssh-ed25519@openssh.com"}, "~/.ssh/id_ed25519_sk-cert.pub"},
		{authn.Principal{KeyType: "ssh-rsa-cert-v01@openssh.com", Method: authn.MethodCert}, "~/.ssh/id_rsa-bastion-cert.pub"},
		{authn.Principal{Method: authn.MethodOIDC}, "~/.ssh/id_ed25519-cert.pub"},
	} {
		if got := certFileFor(c.p); got != c.want {
			t.Errorf("%+v: %s, want %s", c.p, got, c.want)
		}
	}
}
