package subsystems

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

type certUsers struct{}

func (certUsers) GetUser(_ context.Context, name string) (store.User, error) {
	return store.User{Name: name}, nil
}

func (certUsers) CertRevoked(context.Context, uint64) (store.CertRevocation, bool, error) {
	return store.CertRevocation{}, false, nil
}

// certClient signs a certificate for carol with exts, valid until until,
// and logs in with it.
func certClient(t *testing.T, addr string, ca gossh.Signer, exts map[string]string, until time.Time) *gossh.Client {
	t.Helper()
	key := newSigner(t)
	cert := &gossh.Certificate{Key: key.PublicKey(), CertType: gossh.UserCert, Serial: 77, KeyId: "carol-test",
		ValidPrincipals: []string{"carol"}, ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()),
		ValidBefore: uint64(until.Unix()), Permissions: gossh.Permissions{Extensions: exts}}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	cs, err := gossh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "carol", Auth: []gossh.AuthMethod{gossh.PublicKeys(cs)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func certServer(t *testing.T, cfg Config) (string, gossh.Signer, *memAudit) {
	t.Helper()
	ca := newSigner(t)
	cfg.Certificates = &authn.Certificates{CAs: []gossh.PublicKey{ca.PublicKey()}, Store: certUsers{}}
	_, addr, a := limitedServer(t, cfg, newSigner(t))
	return addr, ca, a
}

func refusedFor(a *memAudit, typ, reason string) bool {
	for _, e := range a.events() {
		if e.Action == "request.refuse" && e.Target == typ && e.Reason == reason && e.Actor == "carol" {
			return true
		}
	}
	return false
}

// A certificate's missing extensions refuse what they would grant, on the
// bastion itself; present ones leave today's behaviour.
func TestCertificateExtensionsHonoured(t *testing.T) {
	addr, ca, a := certServer(t, Config{})
	later := time.Now().Add(time.Hour)
	restricted := certClient(t, addr, ca, map[string]string{"permit-port-forwarding": ""}, later)
	s, err := restricted.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err == nil {
		t.Fatal("pty-req granted to a certificate without permit-pty")
	}
	if err := agent.RequestAgentForwarding(s); err == nil {
		t.Fatal("auth-agent-req granted to a certificate without permit-agent-forwarding")
	}
	if ok, err := s.SendRequest("x11-req", true, gossh.Marshal(struct {
		Single        bool
		Proto, Cookie string
		Screen        uint32
	}{false, "MIT-MAGIC-COOKIE-1", "00", 0})); ok || err != nil {
		t.Fatalf("x11-req: ok=%v err=%v", ok, err)
	}
	var stderr strings.Builder
	s.Stderr = &stderr
	out, err := s.Output("whoami")
	if err != nil || strings.TrimSpace(string(out)) != "carol" {
		t.Fatalf("whoami without a pty: %q %v", out, err)
	}
	for _, want := range []string{"a terminal (pty) refused: your certificate (serial 77) does not permit it (it lacks permit-pty)",
		"agent forwarding refused", "X11 forwarding refused"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	for typ, ext := range map[string]string{"pty-req": "permit-pty", "auth-agent-req@openssh.com": "permit-agent-forwarding", "x11-req": "permit-X11-forwarding"} {
		if !refusedFor(a, typ, "certificate without "+ext) {
			t.Errorf("no audited refusal of %s for lacking %s", typ, ext)
		}
	}

	full := certClient(t, addr, ca, map[string]string{"permit-pty": "", "permit-agent-forwarding": ""}, later)
	s, err = full.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatalf("pty-req with permit-pty: %v", err)
	}
	s.Close()
}

// A connection made with a certificate ends at its ValidBefore: the
// sessions first, with the reason, then the connection.
func TestConnectionEndsWhenCertificateExpires(t *testing.T) {
	var mu sync.Mutex
	ended := map[string]string{}
	addr, ca, a := certServer(t, Config{EndSessions: func(conn, reason string) {
		mu.Lock()
		ended[conn] = reason
		mu.Unlock()
	}})
	// Whole seconds: a certificate's validity is in Unix seconds.
	until := time.Now().Truncate(time.Second).Add(2 * time.Second)
	c := certClient(t, addr, ca, map[string]string{"permit-pty": ""}, until)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the connection outlived its certificate")
	}
	if time.Now().Before(until) {
		t.Fatalf("cut before the certificate expired")
	}
	var conn string
	for _, e := range a.events() {
		if e.Action == "auth.cert.expired" && e.Actor == "carol" && e.Reason == ReasonCertExpired && e.Details["serial"] == "77" {
			conn = e.Details["conn"]
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conn == "" || ended[conn] != ReasonCertExpired {
		t.Fatalf("expiry event for conn %q; sessions ended: %v", conn, ended)
	}
}
