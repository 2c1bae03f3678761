package subsystems

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// limitedServer runs the core with cfg's limits and one registered user,
// alice, who may run "whoami".
func limitedServer(t *testing.T, cfg Config, alice gossh.Signer) (*Server, string, *memAudit) {
	t.Helper()
	fp := gossh.FingerprintSHA256(alice.PublicKey())
	mk := &memKeys{keys: map[string]store.Key{fp: {Fingerprint: fp, User: "alice"}}, users: map[string]store.User{"alice": {Name: "alice"}}}
	table := NewTable()
	_ = table.Command(Command{Name: "whoami", Run: func(ctx context.Context, s ssh.Session, _ []string) int {
		p, _ := authn.FromContext(ctx)
		_, _ = io.WriteString(s, p.User+"\n")
		return 0
	}})
	cfg.HostSigners = []gossh.Signer{newSigner(t)}
	a := &memAudit{}
	srv, err := New(cfg, table, &authn.PublicKeys{Store: mk}, a, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv, ln.Addr().String(), a
}

func (s *startups) count() (total, preKex int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.slots), s.preKex
}

// idleFlood opens n connections that never send a byte, from source
// addresses given by src(i), and waits until the server holds them.
func idleFlood(t *testing.T, srv *Server, addr string, n int, src func(int) string) []net.Conn {
	t.Helper()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for i := 0; i < n; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src(i))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if total, _ := srv.startups.count(); total >= min(n, srv.cfg.MaxStartups) {
			return conns
		}
		time.Sleep(10 * time.Millisecond)
	}
	total, _ := srv.startups.count()
	t.Fatalf("the server holds %d of %d flood connections", total, n)
	return nil
}

func login(t *testing.T, addr, user string, k gossh.Signer) (string, error) {
	t.Helper()
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(k)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	out, err := s.Output("whoami")
	return string(out), err
}

// Idle connections fill every pre-auth slot, from many sources (one each)
// and from the user's own address; the user still logs in, because idle
// connections that never finished the key exchange are evicted.
func TestIdleFloodDoesNotLockOut(t *testing.T) {
	alice := newSigner(t)
	for _, c := range []struct {
		name string
		src  func(int) string
	}{
		{"one connection from each of many sources", func(i int) string { return fmt.Sprintf("127.0.%d.%d", 2+i/250, 1+i%250) }},
		{"from the user's own address", func(int) string { return "127.0.0.1" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, addr, _ := limitedServer(t, Config{MaxStartups: 40, MaxStartupsPerSource: 40, PreAuthTimeout: time.Minute}, alice)
			idleFlood(t, srv, addr, 60, c.src)
			out, err := login(t, addr, "alice", alice)
			if err != nil || strings.TrimSpace(out) != "alice" {
				t.Fatalf("login under the flood: %q %v", out, err)
			}
			if total, pre := srv.startups.count(); total > 40 || pre > 40 {
				t.Fatalf("slots over the limit: %d (%d before kex)", total, pre)
			}
		})
	}
}

// A connection that does not finish the key exchange is closed at the
// handshake timeout, audited, and its source penalised.
func TestHandshakeTimeout(t *testing.T) {
	srv, addr, a := limitedServer(t, Config{HandshakeTimeout: 300 * time.Millisecond, PreAuthTimeout: time.Minute}, newSigner(t))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the server did not close an idle connection: %v", err)
	}
	waitUntil(t, func() bool {
		for _, e := range a.events() {
			if e.Action == "auth.fail" && strings.Contains(e.Reason, "handshake timeout of 300ms") {
				return true
			}
		}
		return false
	})
	srv.startups.mu.Lock()
	pen := srv.startups.penalisedLocked("127.0.0.7", time.Now())
	srv.startups.mu.Unlock()
	if !pen {
		t.Fatal("the source is not penalised")
	}
	if blocked, _ := srv.throttle.Blocked("127.0.0.7:1"); blocked {
		t.Fatal("a handshake timeout counted as a failed login")
	}
}

// Login names over 256 bytes or with control characters are refused
// before authentication; the audit names the length, never the bytes.
func TestBadLoginNamesRefusedBeforeAuth(t *testing.T) {
	alice := newSigner(t)
	_, addr, a := limitedServer(t, Config{}, alice)
	long := strings.Repeat("a", 70000)
	for _, c := range []struct{ login, why string }{
		{long, "login name of 70000 bytes is longer than 256 bytes"},
		{"ali\x1b[2Jce", "login name of 9 bytes contains control characters"},
		{"bob\nFAKE LOG LINE", "contains control characters"},
		{"\xff\xfe", "not valid UTF-8"},
	} {
		if out, err := login(t, addr, c.login, alice); err == nil {
			t.Fatalf("login %q... (%d bytes) got in: %q", c.login[:min(len(c.login), 8)], len(c.login), out)
		}
		waitUntil(t, func() bool {
			for _, e := range a.events() {
				if e.Action == "auth.fail" && strings.Contains(e.Reason, c.why) && e.Details["login_bytes"] == fmt.Sprint(len(c.login)) {
					return true
				}
			}
			return false
		})
	}
	for _, e := range a.events() {
		all := e.Actor + e.Reason + e.Target
		for _, v := range e.Details {
			all += v
		}
		if strings.Contains(all, "aaaaaaaa") || strings.ContainsAny(all, "\x1b\n\xff") {
			t.Fatalf("an audit event carries the raw login: %+v", e)
		}
	}
	// A sane name still works, on the same server.
	if out, err := login(t, addr, "alice", alice); err != nil || strings.TrimSpace(out) != "alice" {
		t.Fatalf("normal login: %q %v", out, err)
	}
}

func (a *memAudit) events() []store.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]store.Event(nil), a.evs...)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}
