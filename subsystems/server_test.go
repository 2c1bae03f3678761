package subsystems

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

type memKeys struct {
	keys  map[string]store.Key
	users map[string]store.User
}

func (m *memKeys) KeyByFingerprint(_ context.Context, fp string) (store.Key, error) {
	k, ok := m.keys[fp]
	if !ok {
		return k, store.ErrNotFound
	}
	return k, nil
}

func (m *memKeys) GetUser(_ context.Context, n string) (store.User, error) {
	u, ok := m.users[n]
	if !ok {
		return u, store.ErrNotFound
	}
	return u, nil
}

type memAudit struct {
	mu  sync.Mutex
	evs []store.Event
}

func (a *memAudit) Append(_ context.Context, e store.Event) (store.Event, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, e)
	return e, nil
}

func newSigner(t *testing.T) gossh.Signer {
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

// startServer runs the core in-process with one "whoami" command and the
// given registered users (name -> key).
func startServer(t *testing.T, users map[string]gossh.Signer) string {
	t.Helper()
	mk := &memKeys{keys: map[string]store.Key{}, users: map[string]store.User{}}
	for name, s := range users {
		fp := gossh.FingerprintSHA256(s.PublicKey())
		mk.keys[fp] = store.Key{Fingerprint: fp, User: name}
		mk.users[name] = store.User{Name: name}
	}
	table := NewTable()
	_ = table.Command(Command{Name: "whoami", Run: func(ctx context.Context, s ssh.Session, _ []string) int {
		p, _ := authn.FromContext(ctx)
		io.WriteString(s, p.User+" "+p.KeyFingerprint+"\n")
		return 0
	}})
	srv, err := New(Config{HostSigners: []gossh.Signer{newSigner(t)}, PreAuthTimeout: 5 * time.Second},
		table, &authn.PublicKeys{Store: mk}, &memAudit{}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func run(t *testing.T, addr string, auth ...gossh.AuthMethod) (string, error) {
	t.Helper()
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "x", Auth: auth,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	s.Stdout = &out
	err = s.Run("whoami")
	return out.String(), err
}

func TestNoneAndPasswordAuthAreRefused(t *testing.T) {
	addr := startServer(t, map[string]gossh.Signer{"alice": newSigner(t)})
	if out, err := run(t, addr); err == nil {
		t.Fatalf("none auth got in: %q", out)
	}
	if out, err := run(t, addr, gossh.Password("hunter2")); err == nil {
		t.Fatalf("password auth got in: %q", out)
	}
	if out, err := run(t, addr, gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
		return nil, nil
	})); err == nil {
		t.Fatalf("keyboard-interactive got in: %q", out)
	}
	if out, err := run(t, addr, gossh.PublicKeys(newSigner(t))); err == nil {
		t.Fatalf("unregistered key got in: %q", out)
	}
}

func TestUnregisteredChannelTypeRefusedWithReason(t *testing.T) {
	alice := newSigner(t)
	addr := startServer(t, map[string]gossh.Signer{"alice": alice})
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "x", Auth: []gossh.AuthMethod{gossh.PublicKeys(alice)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Dial("tcp", "127.0.0.1:22")
	var oce *gossh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != gossh.Prohibited || !strings.Contains(oce.Message, "TCP forwarding") {
		t.Fatalf("direct-tcpip: %v", err)
	}
	_, _, err = c.OpenChannel("made-up@example.com", nil)
	if !errors.As(err, &oce) || oce.Reason != gossh.UnknownChannelType || !strings.Contains(oce.Message, "made-up@example.com") {
		t.Fatalf("unknown channel: %v", err)
	}
	ok, _, err := c.SendRequest("tcpip-forward", true, gossh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0}))
	if err != nil || ok {
		t.Fatalf("tcpip-forward accepted: ok=%v err=%v", ok, err)
	}
}
