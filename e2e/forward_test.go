package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// echoResource registers a TCP echo server as the Resource echo-svc, port 7.
func echoResource(t *testing.T, b *harness.Bastion, alice harness.Key) string {
	t.Helper()
	echo := harness.StartEcho(t)
	mustOK(t, b.SSH(alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7"), "resources add echo-svc")
	return echo
}

func TestTCPForwardEchoesAndAuditsBytes(t *testing.T) {
	b, alice, bob := withBob(t)
	echoResource(t, b, alice)
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")

	f := b.StartForward(bob, "echo-svc:7")
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("bastion!"), 4096) // 32 KiB
	harness.Echo(t, c, payload)
	c.Close()

	var closeEv *store.Event
	waitFor(t, 20*time.Second, "forward.close in the audit log", func() bool {
		for _, e := range auditEvents(t, b, alice, "--action", "forward.") {
			if e.Action == "forward.close" && e.Actor == "bob" {
				e := e
				closeEv = &e
				return true
			}
		}
		return false
	})
	want := strconv.Itoa(len(payload))
	if closeEv.Details["bytes_in"] != want || closeEv.Details["bytes_out"] != want {
		t.Fatalf("forward.close bytes in/out = %s/%s, want %s each", closeEv.Details["bytes_in"], closeEv.Details["bytes_out"], want)
	}
	if closeEv.Reason == "" || closeEv.Details["duration"] == "" || closeEv.Details["session"] == "" {
		t.Fatalf("forward.close lacks reason, duration or session: %+v", closeEv)
	}
	var open bool
	for _, e := range auditEvents(t, b, alice, "--action", "forward.open") {
		if e.Actor == "bob" && e.Target == "echo-svc" && e.Details["session"] == closeEv.Details["session"] &&
			strings.HasPrefix(e.Details["source"], "127.0.0.1:") && e.Details["target"] == "echo-svc:7" {
			open = true
		}
	}
	if !open {
		t.Fatal("no matching forward.open event")
	}
}

// sshTarget starts a Debian sshd that accepts key, registered as host-1.
func sshTarget(t *testing.T, b *harness.Bastion, alice harness.Key, key harness.Key) *harness.SSHD {
	t.Helper()
	sshd := harness.StartSSHD(t, harness.SSHDOptions{AuthorizedKeys: []string{key.Public}})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr), "resources add host-1")
	return sshd
}

func TestProxyJumpAndDashW(t *testing.T) {
	b, alice, bob := withBob(t)
	sshTarget(t, b, alice, bob)
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant")

	// The `config` command writes the ~/.ssh/config block users paste.
	r := b.SSH(bob, "config")
	mustOK(t, r, "config")
	if !harness.Contains(r.Stdout, "Host host-1", "ProxyJump bastion") {
		t.Fatalf("config output:\n%s", r.Stdout)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("Host bastion\n  HostName 127.0.0.1\n  Port %s\n  HostKeyAlias bastion-under-test\n  UserKnownHostsFile %s\n"+
		"Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  StrictHostKeyChecking accept-new\n"+
		"  UserKnownHostsFile %s\n  LogLevel ERROR\n",
		b.Port, b.KnownHosts, bob.Path, filepath.Join(dir, "known_hosts_targets"))
	// Keep the generated host blocks (ProxyJump) and add our test options.
	var hostBlocks []string
	for _, block := range strings.Split(r.Stdout, "\n\n") {
		if strings.Contains(block, "ProxyJump") {
			hostBlocks = append(hostBlocks, block)
		}
	}
	cfgPath := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(hostBlocks, "\n\n")+"\n\n"+cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh", "-F", cfgPath, "host-1", "echo", "hello-from-host-1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello-from-host-1") {
		t.Fatalf("ssh -J bastion host-1: %v\n%s", err, out)
	}
	out, err = exec.Command("ssh", "-F", cfgPath, "-J", "bastion", "host-1", "echo", "via-dash-J").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "via-dash-J") {
		t.Fatalf("ssh -J: %v\n%s", err, out)
	}
	// ssh -W alone: the target's SSH banner comes back on stdout.
	cmd := exec.Command("ssh", append(b.SSHArgs(bob), "-W", "host-1:22", "127.0.0.1")...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	banner := make([]byte, 8)
	_, _ = stdout.Read(banner)
	if !strings.HasPrefix(string(banner), "SSH-2.0-") {
		t.Fatalf("ssh -W host-1:22 returned %q", banner)
	}
}

func TestForwardRefusals(t *testing.T) {
	b, alice, bob := withBob(t)
	sshTarget(t, b, alice, bob)
	w := func(target string) harness.Result {
		return b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-W", target}, Options: []string{"LogLevel=INFO"}})
	}
	// bob may see host-1 but not use it: the refusal names it and how to
	// ask (without view it would read as a name that is no Resource).
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#view@user:bob"), "grant view")
	r := w("host-1:22")
	if r.Code == 0 || !harness.Contains(r.Stderr, "administratively prohibited", "user:bob lacks act on resource:host-1", "request create host-1") {
		t.Fatalf("no act: exit %d stderr %q", r.Code, r.Stderr)
	}
	// Not an open proxy: raw addresses, localhost and the bastion itself.
	for _, target := range []string{"127.0.0.1:22", "localhost:" + b.Port, "127.0.0.1:" + b.Port, "example.com:443"} {
		r := w(target)
		if r.Code == 0 || !harness.Contains(r.Stderr, "administratively prohibited", "not a Resource") {
			t.Errorf("-W %s: exit %d stderr %q", target, r.Code, r.Stderr)
		}
	}
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant")
	if r := w("host-1:2222"); r.Code == 0 || !strings.Contains(r.Stderr, "port 2222 is not allowed") {
		t.Errorf("disallowed port: exit %d stderr %q", r.Code, r.Stderr)
	}
	// A dial error reaches the client with its cause.
	mustOK(t, b.SSH(alice, "resources", "add", "dead", "--kind", "tcp", "--address", "127.0.0.1:1"), "resources add dead")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:dead#act@user:bob"), "grant dead")
	if r := w("dead:1"); r.Code == 0 || !harness.Contains(r.Stderr, "connect failed", "connection refused") {
		t.Errorf("dial error: exit %d stderr %q", r.Code, r.Stderr)
	}
}

// liveForward opens a forward to echo-svc and proves it works.
func liveForward(t *testing.T, b *harness.Bastion, key harness.Key) net.Conn {
	t.Helper()
	f := b.StartForward(key, "echo-svc:7")
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	harness.Echo(t, c, []byte("ping"))
	return c
}

func TestForwardCutOffs(t *testing.T) {
	b, alice, bob := withBob(t)
	echoResource(t, b, alice)

	t.Run("tuple expiry", func(t *testing.T) {
		mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob", "--expires", "5s"), "grant 5s")
		expiry := time.Now().Add(5 * time.Second)
		c := liveForward(t, b, bob)
		cut := harness.WaitClosed(t, c, 30*time.Second)
		lag := cut.Sub(expiry)
		t.Logf("forward cut %s after the tuple expired", lag)
		// The sweeper runs every 250 ms; the bound is loose because this
		// machine is shared, the aim is seconds, not minutes.
		if lag > 3*time.Second {
			t.Fatalf("forward cut %s after expiry", lag)
		}
		if r := b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-W", "echo-svc:7"}}); r.Code == 0 {
			t.Fatal("new forward allowed after expiry")
		}
	})
	t.Run("sessions kill", func(t *testing.T) {
		mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")
		c := liveForward(t, b, bob)
		r := b.SSH(bob, "sessions", "-o", "json")
		mustOK(t, r, "sessions")
		var ss []store.Session
		if err := json.Unmarshal([]byte(r.Stdout), &ss); err != nil || len(ss) != 1 || ss[0].State != "open" {
			t.Fatalf("bob's sessions: %v %s", err, r.Stdout)
		}
		killed := time.Now()
		mustOK(t, b.SSH(alice, "sessions", "kill", ss[0].ID), "sessions kill")
		t.Logf("forward cut %s after the kill", harness.WaitClosed(t, c, 30*time.Second).Sub(killed))
	})
	t.Run("tuple removed", func(t *testing.T) {
		c := liveForward(t, b, bob)
		removed := time.Now()
		mustOK(t, b.SSH(alice, "tuples", "rm", "resource:echo-svc#act@user:bob"), "revoke")
		t.Logf("forward cut %s after the tuple was removed", harness.WaitClosed(t, c, 30*time.Second).Sub(removed))
	})
	t.Run("session TTL", func(t *testing.T) {
		echo := harness.StartEcho(t)
		mustOK(t, b.SSH(alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7", "--ttl", "2s"), "ttl 2s")
		mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")
		opened := time.Now()
		c := liveForward(t, b, bob)
		t.Logf("forward cut %s after opening with a 2s TTL", harness.WaitClosed(t, c, 30*time.Second).Sub(opened))
	})
	t.Run("idle timeout", func(t *testing.T) {
		echo := harness.StartEcho(t)
		mustOK(t, b.SSH(alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7", "--idle-timeout", "3s"), "idle 3s")
		c := liveForward(t, b, bob)
		// Activity keeps it open past the idle timeout...
		for i := 0; i < 5; i++ {
			time.Sleep(700 * time.Millisecond)
			harness.Echo(t, c, []byte("keep"))
		}
		// ...and silence ends it.
		idle := time.Now()
		t.Logf("forward cut %s after going idle (3s idle timeout)", harness.WaitClosed(t, c, 30*time.Second).Sub(idle))
	})
	var reasons []string
	for _, e := range auditEvents(t, b, alice, "--action", "forward.close") {
		reasons = append(reasons, e.Reason)
	}
	got := strings.Join(reasons, ",")
	if !harness.Contains(got, "policy change", "revoked", "ttl expired", "idle timeout") {
		t.Fatalf("forward.close reasons %q lack policy change, revoked, ttl expired or idle timeout", got)
	}
}

// Ending another user's session takes admin of its Resource's project, the
// narrowest relation that grants it: someone without it is refused with
// that relation named (not domain admin), and the session lives on; an
// admin of that project ends it.
func TestSessionsKillOfAnotherNeedsTheProjectsAdmin(t *testing.T) {
	b, alice, bob := withBob(t)
	echo := harness.StartEcho(t)
	mustOK(t, b.SSH(alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7", "--project", "shop"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant bob")
	carol := addUser(t, b, alice, "carol")
	dave := addUser(t, b, alice, "dave")
	mustOK(t, b.SSH(alice, "tuples", "add", "project:shop#admin@user:dave"), "dave admins shop")
	mustOK(t, b.SSH(alice, "tuples", "add", "project:other#admin@user:carol"), "carol admins another project")
	c := liveForward(t, b, bob)
	var ss []store.Session
	r := b.SSH(bob, "sessions", "-o", "json")
	if err := json.Unmarshal([]byte(r.Stdout), &ss); err != nil || len(ss) != 1 {
		t.Fatalf("bob's sessions: %v %s", err, r.Stdout)
	}
	r = b.SSH(carol, "sessions", "kill", ss[0].ID)
	if r.Code == 0 || !harness.Contains(r.Stderr, "permission denied", "admin on project:shop", "tuples add project:shop#admin@user:carol") ||
		strings.Contains(r.Stderr, "domain:default") {
		t.Fatalf("carol kills bob's session: exit %d\n%s", r.Code, r.Stderr)
	}
	harness.Echo(t, c, []byte("still open"))
	mustOK(t, b.SSH(dave, "sessions", "kill", ss[0].ID), "dave, admin of shop, kills bob's session")
	harness.WaitClosed(t, c, 30*time.Second)
}
