package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// admin starts a bastion whose bootstrap admin is alice, as `make run` does
// with the invoking user's keys.
func admin(t *testing.T, config string) (*harness.Bastion, harness.Key) {
	t.Helper()
	alice := harness.NewKey(t, t.TempDir(), "alice")
	b := harness.Start(t, harness.Options{Admin: "alice", AdminKeys: []harness.Key{alice}, Config: config})
	return b, alice
}

func mustOK(t *testing.T, r harness.Result, what string) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.Code, r.Stdout, r.Stderr)
	}
}

func auditEvents(t *testing.T, b *harness.Bastion, k harness.Key, args ...string) []store.Event {
	t.Helper()
	r := b.SSH(k, append([]string{"audit", "-o", "json", "--limit", "0"}, args...)...)
	mustOK(t, r, "audit")
	var evs []store.Event
	if err := json.Unmarshal([]byte(r.Stdout), &evs); err != nil {
		t.Fatalf("audit -o json is not JSON: %v\n%s", err, r.Stdout)
	}
	return evs
}

func TestWhoamiWithPublicKey(t *testing.T) {
	b, alice := admin(t, "")
	r := b.SSH(alice, "whoami")
	mustOK(t, r, "whoami")
	for _, want := range []string{"alice", "publickey", alice.Fingerprint} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("whoami output lacks %q:\n%s", want, r.Stdout)
		}
	}
	r = b.SSH(alice, "whoami", "-o", "json")
	mustOK(t, r, "whoami -o json")
	var p struct {
		User, Method, KeyFingerprint string `json:"-"`
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &raw); err != nil {
		t.Fatalf("whoami -o json: %v\n%s", err, r.Stdout)
	}
	p.User, p.Method, p.KeyFingerprint = fmt.Sprint(raw["user"]), fmt.Sprint(raw["method"]), fmt.Sprint(raw["key_fingerprint"])
	if p.User != "alice" || p.Method != "publickey" || p.KeyFingerprint != alice.Fingerprint {
		t.Fatalf("whoami -o json = %+v", raw)
	}
	// The success is audited with method, fingerprint and source.
	var found bool
	for _, e := range auditEvents(t, b, alice, "--action", "auth.success") {
		if e.Actor == "alice" && e.Details["fingerprint"] == alice.Fingerprint && strings.HasPrefix(e.Details["source"], "127.0.0.1:") {
			found = true
		}
	}
	if !found {
		t.Fatal("no auth.success event for alice with fingerprint and source")
	}
}

func TestRestartKeepsHostKeyUsersKeysAndAudit(t *testing.T) {
	b, alice := admin(t, "")
	bob := harness.NewKey(t, t.TempDir(), "bob")
	mustOK(t, b.SSH(alice, "users", "add", "bob"), "users add bob")
	mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: bob.Public + "\n"}), "keys add bob")
	mustOK(t, b.SSH(bob, "whoami"), "bob whoami before restart")
	before := auditEvents(t, b, alice)
	if len(before) == 0 {
		t.Fatal("no audit events before restart")
	}

	b.Restart()

	// known_hosts was written by the first connection; StrictHostKeyChecking
	// is now "yes", so a changed host key would fail here.
	r := b.SSHRun(harness.Run{Key: &bob, Args: []string{"whoami"}, StrictHostKey: "yes", Options: []string{"LogLevel=INFO"}})
	mustOK(t, r, "bob whoami after restart")
	if strings.Contains(r.Stderr, "WARNING") || strings.Contains(r.Stderr, "differs") {
		t.Fatalf("host key warning after restart: %s", r.Stderr)
	}
	if !strings.Contains(r.Stdout, "bob") {
		t.Fatalf("whoami after restart: %s", r.Stdout)
	}
	after := auditEvents(t, b, alice)
	seen := map[uint64]string{}
	for _, e := range after {
		seen[e.Seq] = e.Hash
	}
	for _, e := range before {
		if seen[e.Seq] != e.Hash {
			t.Fatalf("audit event %d (%s) lost or changed across restart", e.Seq, e.Action)
		}
	}
}

func TestUnregisteredKeyRefusedAndAudited(t *testing.T) {
	b, alice := admin(t, "")
	stranger := harness.NewKey(t, t.TempDir(), "stranger")
	r := b.SSH(stranger, "whoami")
	if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied (publickey)") {
		t.Fatalf("unregistered key: exit %d, stderr %q", r.Code, r.Stderr)
	}
	var ev *store.Event
	for _, e := range auditEvents(t, b, alice, "--action", "auth.fail") {
		if strings.Contains(e.Details["fingerprints"], stranger.Fingerprint) {
			e := e
			ev = &e
		}
	}
	if ev == nil {
		t.Fatal("no auth.fail event naming the stranger's fingerprint")
	}
	if !strings.HasPrefix(ev.Details["source"], "127.0.0.1:") || ev.Decision != "deny" || !strings.Contains(ev.Reason, "not registered") {
		t.Fatalf("auth.fail event lacks source, decision or reason: %+v", ev)
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	b, alice := admin(t, "")
	mustOK(t, b.SSH(alice, "whoami"), "whoami")
	r := b.SSH(alice, "audit", "verify")
	mustOK(t, r, "audit verify")
	if !strings.HasPrefix(r.Stdout, "OK: ") || !strings.Contains(r.Stdout, "events") {
		t.Fatalf("audit verify: %q", r.Stdout)
	}

	b.Stop()
	st, err := badger.Open(b.DataDir, badger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.TamperEventForTest(2, func(e *store.Event) { e.Actor = "mallory" }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// The change is among the newest events, which every start verifies:
	// the bastion refuses to start, naming the broken seq with whole
	// hashes (issue 19, item 10).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, harness.Binary(t), "serve", "--config", b.ConfigPath,
		"--admin", "alice", "--admin-key", alice.PubPath).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the bastion started on a tampered log (%v):\n%s", err, out)
	}
	if !regexp.MustCompile(`BROKEN at seq 2: content does not match its hash \(stored [0-9a-f]{64}, computed [0-9a-f]{64}\)`).Match(out) {
		t.Fatalf("the refusal does not name the broken seq 2 with whole hashes:\n%s", out)
	}
}

func TestNonAdminRefusedWithReason(t *testing.T) {
	b, alice := admin(t, "")
	bob := harness.NewKey(t, t.TempDir(), "bob")
	mustOK(t, b.SSH(alice, "users", "add", "bob"), "users add")
	mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: bob.Public}), "keys add")
	r := b.SSH(bob, "users", "add", "carol")
	if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") || !strings.Contains(r.Stderr, "admin") {
		t.Fatalf("non-admin users add: exit %d stderr %q", r.Code, r.Stderr)
	}
	// bad input loses nothing: a garbage key adds nothing.
	r = b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: "not a key\n"})
	if r.Code == 0 || !strings.Contains(r.Stderr, "not an OpenSSH public key") {
		t.Fatalf("garbage key: exit %d stderr %q", r.Code, r.Stderr)
	}
	r = b.SSH(alice, "keys", "list", "bob", "-o", "json")
	mustOK(t, r, "keys list bob")
	var ks []store.Key
	if err := json.Unmarshal([]byte(r.Stdout), &ks); err != nil || len(ks) != 1 || ks[0].Fingerprint != bob.Fingerprint {
		t.Fatalf("keys list bob = %v (%v)", r.Stdout, err)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	b, alice := admin(t, "")
	mustOK(t, b.SSH(alice, "whoami"), "whoami")
	get := func(path string) string {
		resp, err := http.Get("http://" + b.Metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return string(body)
	}
	if h := get("/healthz"); !strings.Contains(h, "ok") {
		t.Fatalf("/healthz = %q", h)
	}
	m := get("/metrics")
	for _, want := range []string{`bastion_auth_total{method="publickey",result="success"} 1`, "go_goroutines", "process_open_fds"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.HasPrefix(b.Metrics, "127.0.0.1:") {
		t.Errorf("metrics listen %s is not loopback", b.Metrics)
	}
}

func TestPreAuthDeadlineDropsSilentClient(t *testing.T) {
	b, alice := admin(t, "auth:\n  pre_auth_timeout: 2s\n")
	c, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Never send anything: the server must hang up by itself.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("server did not close a silent pre-auth connection: %v", err)
	}
	var found bool
	for _, e := range auditEvents(t, b, alice, "--action", "auth.fail") {
		if strings.Contains(e.Reason, "pre-auth deadline") {
			found = true
		}
	}
	if !found {
		t.Fatal("dropped pre-auth connection not audited")
	}
}

func TestAuthAttemptCapClosesConnection(t *testing.T) {
	b, _ := admin(t, "")
	dir := t.TempDir()
	var flags []string
	for i := 0; i < 8; i++ {
		k := harness.NewKey(t, dir, fmt.Sprintf("k%d", i))
		flags = append(flags, "-i", k.Path)
	}
	r := b.SSHRun(harness.Run{Flags: flags, Args: []string{"whoami"}, Options: []string{"LogLevel=INFO"}})
	if r.Code != 255 || !strings.Contains(strings.ToLower(r.Stderr), "too many authentication failures") {
		t.Fatalf("8 unknown keys: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestPerSourceThrottle(t *testing.T) {
	b, alice := admin(t, "auth:\n  failed_conns_per_source: 3\n  fail_window: 10m\n")
	stranger := harness.NewKey(t, t.TempDir(), "stranger")
	for i := 0; i < 3; i++ {
		if r := b.SSH(stranger, "whoami"); r.Code != 255 {
			t.Fatalf("stranger %d got in: %+v", i, r)
		}
	}
	// Even a valid key is now refused from this source, with the reason
	// shown before authentication.
	r := b.SSHRun(harness.Run{Key: &alice, Args: []string{"whoami"}, Options: []string{"LogLevel=INFO"}})
	if r.Code != 255 || !strings.Contains(r.Stderr, "too many failed logins") {
		t.Fatalf("throttled source: exit %d stderr %q", r.Code, r.Stderr)
	}
}

func TestMain(m *testing.M) {
	if _, err := os.Stat(harness.SSHDPath); err != nil {
		fmt.Fprintln(os.Stderr, "note: sshd not installed; run `make test` (it installs openssh-server)")
	}
	code := m.Run()
	harness.StopKubeNode()
	harness.RemoveBinary()
	os.Exit(code)
}

// Slow-loris connections that never authenticate fill their source's
// pre-auth slots; beyond them new ones are dropped at once, and a user
// from another source still logs in.
func TestPreAuthFloodDoesNotLockOutOthers(t *testing.T) {
	b, alice := admin(t, "auth:\n  max_startups_per_source: 5\n")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	for i := 0; i < 5; i++ {
		c, err := d.Dial("tcp", b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Make sure the server accepted all five before the sixth.
	waitFor(t, 20*time.Second, "5 pre-auth connections", func() bool {
		return strings.Contains(metrics(t, b), "bastion_ssh_connections_active 5")
	})
	// A sixth from the same source is admitted: the source's oldest
	// connection that never finished the key exchange is evicted for it,
	// so that a user sharing an address with a flood still gets in.
	c, err := d.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = conns[0].SetReadDeadline(time.Now().Add(20 * time.Second))
	// It sees the server's version line at most, then the close.
	if n, err := io.Copy(io.Discard, conns[0]); err != nil || n > 64 {
		t.Fatalf("the oldest idle connection of the source was not evicted: %d bytes, %v", n, err)
	}
	waitFor(t, 20*time.Second, "the eviction to be counted", func() bool {
		return strings.Contains(metrics(t, b), `bastion_refused_total{kind="startup_evicted"} 1`)
	})
	// Users from that source and from another both log in.
	for _, src := range []string{"127.0.0.3", "127.0.0.1"} {
		r := b.SSHRun(harness.Run{Key: &alice, Flags: []string{"-b", src}, Args: []string{"whoami"}})
		mustOK(t, r, "whoami from "+src+" during the flood")
	}
}
