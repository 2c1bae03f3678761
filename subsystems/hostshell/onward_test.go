package hostshell

import (
	"context"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

type memSecrets map[string][]byte

func (m memSecrets) GetSecret(_ context.Context, name string) ([]byte, error) {
	b, ok := m[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return b, nil
}

func (m memSecrets) PutSecret(_ context.Context, name string, b []byte) error {
	m[name] = b
	return nil
}

func (m memSecrets) CreateSecret(_ context.Context, name string, b []byte) ([]byte, error) {
	if old, ok := m[name]; ok {
		return old, nil
	}
	m[name] = b
	return b, nil
}

// The onward certificate never grants more than the user's own.
func TestOnwardCertificateCarriesNoMoreThanTheUsers(t *testing.T) {
	ca, err := LoadOrCreateCA(context.Background(), memSecrets{})
	if err != nil {
		t.Fatal(err)
	}
	cert := authn.Principal{User: "carol", Method: authn.MethodCert}
	for _, c := range []struct {
		name   string
		p      authn.Principal
		remote string
		ext    []string
		force  string
	}{
		{"plain key: as before", authn.Principal{User: "bob", Method: authn.MethodPublicKey}, "", []string{"permit-pty"}, ""},
		{"certificate with everything", cert, "", []string{"permit-pty", "permit-user-rc"}, ""},
		{"no-pty", func() authn.Principal { p := cert; p.NoPTY = true; return p }(), "", []string{"permit-user-rc"}, ""},
		{"no-user-rc", func() authn.Principal { p := cert; p.NoUserRC = true; return p }(), "", []string{"permit-pty"}, ""},
		{"force-command on the target", func() authn.Principal { p := cert; p.ForceCommand = "web-1 -- uptime"; return p }(),
			"uptime", []string{"permit-pty", "permit-user-rc"}, "uptime"},
	} {
		s, err := ca.Issue(c.p.User, "root", "s-1", time.Minute, onwardPermissions(c.p, c.remote))
		if err != nil {
			t.Fatal(err)
		}
		oc := s.PublicKey().(*gossh.Certificate)
		if len(oc.Extensions) != len(c.ext) {
			t.Errorf("%s: extensions %v, want %v", c.name, oc.Extensions, c.ext)
		}
		for _, e := range c.ext {
			if _, ok := oc.Extensions[e]; !ok {
				t.Errorf("%s: extensions %v lack %s", c.name, oc.Extensions, e)
			}
		}
		for _, never := range []string{"permit-agent-forwarding", "permit-X11-forwarding", "permit-port-forwarding"} {
			if _, ok := oc.Extensions[never]; ok {
				t.Errorf("%s: onward certificate grants %s", c.name, never)
			}
		}
		if got := oc.CriticalOptions["force-command"]; got != c.force {
			t.Errorf("%s: force-command %q, want %q", c.name, got, c.force)
		}
		if len(oc.ValidPrincipals) != 1 || oc.ValidPrincipals[0] != "root" {
			t.Errorf("%s: principals %v", c.name, oc.ValidPrincipals)
		}
	}
}
