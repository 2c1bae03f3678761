package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// requestEnv: admin root; alice may see host-1 (project payments) but not
// reach it; bob reviews payments; carol is a member but no reviewer.
type requestEnv struct {
	b                       *harness.Bastion
	root, alice, bob, carol harness.Key
	jump                    string // ssh_config for `ssh -F jump -J bastion host-1`
}

func requestSetup(t *testing.T) *requestEnv {
	t.Helper()
	b, root := rootBastion(t)
	e := &requestEnv{b: b, root: root, alice: addUser(t, b, root, "alice"), bob: addUser(t, b, root, "bob"), carol: addUser(t, b, root, "carol")}
	sshd := harness.StartSSHD(t, harness.SSHDOptions{AuthorizedKeys: []string{e.alice.Public}})
	mustOK(t, b.SSH(root, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--project", "payments"), "resources add host-1")
	mustOK(t, b.SSH(root, "resources", "add", "vault", "--kind", "tcp", "--address", "127.0.0.1:1", "--project", "secrets"), "resources add vault")
	mustOK(t, b.SSH(root, "tuples", "add", "project:payments#member@user:alice", "project:payments#member@user:carol",
		"project:payments#reviewer@user:bob"), "tuples")
	dir := t.TempDir()
	e.jump = filepath.Join(dir, "ssh_config")
	cfg := fmt.Sprintf("Host bastion\n  HostName 127.0.0.1\n  Port %s\n  HostKeyAlias bastion-under-test\n  UserKnownHostsFile %s\n"+
		"Host host-1\n  HostKeyAlias host-1\n  ProxyJump bastion\n"+
		"Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  StrictHostKeyChecking accept-new\n"+
		"  UserKnownHostsFile %s\n  LogLevel ERROR\n", b.Port, b.KnownHosts, e.alice.Path, filepath.Join(dir, "known_hosts_targets"))
	if err := os.WriteFile(e.jump, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOK(t, b.SSH(e.alice, "whoami"), "alice learns the bastion's host key")
	return e
}

func (e *requestEnv) sshJump(args ...string) *exec.Cmd {
	return exec.Command("ssh", append([]string{"-F", e.jump, "host-1"}, args...)...)
}

func (e *requestEnv) pendingID(t *testing.T, k harness.Key) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := e.b.SSH(k, "request", "list", "--pending", "-o", "json")
		mustOK(t, r, "request list")
		var rs []store.AccessRequest
		if err := json.Unmarshal([]byte(r.Stdout), &rs); err != nil {
			t.Fatalf("request list -o json: %v\n%s", err, r.Stdout)
		}
		if len(rs) > 0 {
			return rs[0].ID
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no pending request appeared")
	return ""
}

// startWait runs `request create host-1 --reason ... --wait` as alice.
func (e *requestEnv) startWait(t *testing.T, ttl string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command("ssh", append(e.b.SSHArgs(e.alice), "127.0.0.1", "request", "create", "host-1", "--reason", "INC-7", "--ttl", ttl, "--wait")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &out
}

func waitExit(t *testing.T, cmd *exec.Cmd, limit time.Duration, what string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s did not end within %s", what, limit)
	}
	return nil
}

func TestAccessRequestApprovedThenExpires(t *testing.T) {
	e := requestSetup(t)
	out, err := e.sshJump("true").CombinedOutput()
	if err == nil {
		t.Fatal("alice reached host-1 without a grant")
	}
	r := e.b.SSHRun(harness.Run{Key: &e.alice, Flags: []string{"-W", "host-1:22"}, Options: []string{"LogLevel=INFO"}})
	if !harness.Contains(r.Stderr, "lacks act on resource:host-1", "request create host-1") {
		t.Fatalf("the refusal does not say how to ask:\n%s%s", out, r.Stderr)
	}

	wait, waitOut := e.startWait(t, "8s")
	id := e.pendingID(t, e.bob)
	// Nobody approves their own request; a non-reviewer cannot approve.
	r = e.b.SSH(e.alice, "request", "approve", id)
	if r.Code == 0 || !strings.Contains(r.Stderr, "your own request") {
		t.Fatalf("alice approving her own request: exit %d %s", r.Code, r.Stderr)
	}
	r = e.b.SSH(e.carol, "request", "approve", id)
	if r.Code == 0 || !harness.Contains(r.Stderr, "user:carol is not a reviewer of resource:host-1", "payments") {
		t.Fatalf("carol approving: exit %d %s", r.Code, r.Stderr)
	}
	mustOK(t, e.b.SSH(e.bob, "request", "approve", id, "--reason", "ok"), "bob approves")
	if err := waitExit(t, wait, 30*time.Second, "request create --wait"); err != nil || !strings.Contains(waitOut.String(), "approved by bob") {
		t.Fatalf("alice's --wait: %v\n%s", err, waitOut.String())
	}
	// The grant works, and a live session through it ...
	if out, err := e.sshJump("echo", "granted").CombinedOutput(); err != nil || !strings.Contains(string(out), "granted") {
		t.Fatalf("ssh -J bastion host-1 after approval: %v\n%s", err, out)
	}
	live := e.sshJump("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	// ... is cut when the TTL passes, and new ones are refused.
	if err := waitExit(t, live, 40*time.Second, "the live session after the grant's TTL"); err == nil {
		t.Fatal("the live session ended successfully instead of being cut")
	}
	if out, err := e.sshJump("true").CombinedOutput(); err == nil {
		t.Fatalf("ssh -J after expiry succeeded:\n%s", out)
	}
	seen := map[string]bool{}
	for _, ev := range auditEvents(t, e.b, e.root, "--action", "access_request.") {
		if ev.Details["request"] == id {
			seen[ev.Action] = true
		}
	}
	for _, a := range []string{"access_request.created", "access_request.approved", "access_request.expired"} {
		if !seen[a] {
			t.Errorf("no %s event for %s", a, id)
		}
	}
}

func TestAccessRequestDeniedSearchAndDrop(t *testing.T) {
	e := requestSetup(t)
	// search shows host-1 (requestable) but never vault (not visible).
	r := e.b.SSH(e.alice, "request", "search")
	mustOK(t, r, "request search")
	if !strings.Contains(r.Stdout, "host-1") || strings.Contains(r.Stdout, "vault") {
		t.Fatalf("request search:\n%s", r.Stdout)
	}
	if r := e.b.SSH(e.alice, "request", "create", "vault", "--reason", "x"); r.Code == 0 || strings.Contains(r.Stderr, "secrets") {
		t.Fatalf("requesting an invisible Resource: exit %d %s", r.Code, r.Stderr)
	}

	wait, waitOut := e.startWait(t, "1h")
	id := e.pendingID(t, e.bob)
	mustOK(t, e.b.SSH(e.bob, "request", "deny", id, "--reason", "'not during the freeze'"), "deny")
	if err := waitExit(t, wait, 30*time.Second, "request create --wait"); err == nil || !strings.Contains(waitOut.String(), "denied by bob: not during the freeze") {
		t.Fatalf("alice's --wait after a denial: %v\n%s", err, waitOut.String())
	}

	// Approve a second one, then alice drops it: access ends.
	r = e.b.SSH(e.alice, "request", "create", "host-1", "--reason", "INC-8", "-o", "json")
	mustOK(t, r, "request create")
	var req store.AccessRequest
	if err := json.Unmarshal([]byte(r.Stdout), &req); err != nil {
		t.Fatal(err)
	}
	mustOK(t, e.b.SSH(e.bob, "request", "approve", req.ID), "approve")
	if out, err := e.sshJump("true").CombinedOutput(); err != nil {
		t.Fatalf("after approval: %v\n%s", err, out)
	}
	mustOK(t, e.b.SSH(e.alice, "request", "drop", req.ID), "drop")
	if out, err := e.sshJump("true").CombinedOutput(); err == nil {
		t.Fatalf("after the drop ssh -J still works:\n%s", out)
	}
	seen := map[string]bool{}
	for _, ev := range auditEvents(t, e.b, e.root, "--action", "access_request.") {
		seen[ev.Action+" "+ev.Reason] = true
	}
	if !seen["access_request.denied not during the freeze"] || !seen["access_request.dropped "] {
		t.Fatalf("audit: %v", seen)
	}
}
