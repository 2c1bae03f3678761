package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// ssh -A to a host through the bastion: the user's agent reaches the
// target (a real sshd, where ssh-add -l runs) only with forward_agent on
// the Resource, which nobody has by default. Opened and closed agents are
// audited; a refusal names the relation and the session goes on.
func TestAgentForwardingGatedByPolicy(t *testing.T) {
	b, alice, bob := withBob(t)
	ca := b.SSH(alice, "ca")
	mustOK(t, ca, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(ca.Stdout)})
	mustOK(t, b.SSH(alice, "resources", "add", "web-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add web-1")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:web-1#act@user:bob"), "grant act")

	// The agent holds a key of its own, so that seeing it on the target
	// can only mean the agent was forwarded.
	sock := harness.StartAgent(t)
	laptop := harness.NewKey(t, t.TempDir(), "laptop")
	add := exec.Command("ssh-add", laptop.Path)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	run := func(flags ...string) harness.Result {
		return b.SSHRun(harness.Run{Key: &bob, Agent: sock, Flags: flags, Args: []string{"web-1", "--", "ssh-add", "-l"}})
	}

	// Without forward_agent: today's message, naming the relation; the
	// command still runs, without an agent.
	r := run("-A")
	if r.Code == 0 || strings.Contains(r.Stdout, laptop.Fingerprint) ||
		!harness.Contains(r.Stderr, "agent forwarding (ssh -A) refused", "user:bob lacks forward_agent on resource:web-1", "tuples add resource:web-1#forward_agent@user:bob") {
		t.Fatalf("-A without forward_agent: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	// Nor is -A forwarded to a bastion command.
	r = b.SSHRun(harness.Run{Key: &bob, Agent: sock, Flags: []string{"-A"}, Args: []string{"whoami"}})
	if !strings.Contains(r.Stderr, "agent forwarding (ssh -A) refused") {
		t.Fatalf("-A to whoami: %s", r.Stderr)
	}

	mustOK(t, b.SSH(alice, "tuples", "add", "resource:web-1#forward_agent@user:bob"), "grant forward_agent")
	for _, flags := range [][]string{{"-A"}, {"-A", "-tt"}} {
		r = run(flags...)
		if r.Code != 0 || !strings.Contains(r.Stdout, laptop.Fingerprint) {
			t.Fatalf("%v with forward_agent: exit %d\nstdout %s\nstderr %s", flags, r.Code, r.Stdout, r.Stderr)
		}
	}
	// Without -A nothing is forwarded, grant or not.
	if r = run(); r.Code == 0 || strings.Contains(r.Stdout, laptop.Fingerprint) {
		t.Fatalf("without -A: exit %d\n%s", r.Code, r.Stdout)
	}

	// The agent ends with its session: a killed session closes it.
	listed := filepath.Join(t.TempDir(), "listed") // the target runs on this machine
	done := make(chan harness.Result, 1)
	go func() {
		done <- b.SSHRun(harness.Run{Key: &bob, Agent: sock, Flags: []string{"-A"}, Args: []string{"web-1", "--", "ssh-add -l > " + listed + "; sleep 60"}})
	}()
	var killed string
	for deadline := time.Now().Add(20 * time.Second); killed == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got, _ := os.ReadFile(listed); !strings.Contains(string(got), laptop.Fingerprint) {
			continue
		}
		var ss []store.Session
		if err := json.Unmarshal([]byte(b.SSH(bob, "sessions", "-o", "json").Stdout), &ss); err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.State == "open" && s.Kind == "shell" {
				killed = s.ID
			}
		}
	}
	if killed == "" {
		t.Fatal("the -A session did not open, or its agent did not list the key")
	}
	mustOK(t, b.SSH(alice, "sessions", "kill", killed), "sessions kill")
	select {
	case r := <-done:
		if r.Code == 0 {
			t.Fatalf("the killed session ended well: %s %s", r.Stdout, r.Stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the killed session did not end")
	}

	var deny, opened, closed int
	killedClose := false
	sessionsOpened := map[string]bool{}
	for _, e := range auditEvents(t, b, alice, "--action", "agent.") {
		if e.Actor != "bob" || e.Target != "web-1" {
			continue
		}
		switch e.Action {
		case "agent.deny":
			if e.Details["relation"] == "forward_agent" && strings.Contains(e.Reason, "lacks forward_agent") {
				deny++
			}
		case "agent.open":
			if e.Details["session"] != "" {
				opened++
				sessionsOpened[e.Details["session"]] = true
			}
		case "agent.close":
			if sessionsOpened[e.Details["session"]] && e.Details["uses"] != "0" && e.Details["bytes"] != "0" {
				closed++
			}
			if e.Details["session"] == killed && e.Reason == "revoked" {
				killedClose = true
			}
		}
	}
	if deny != 1 || opened != 3 || closed != 3 || !killedClose {
		t.Fatalf("agent events: %d deny (want 1), %d open (want 3), %d close with uses (want 3), killed session's close: %v", deny, opened, closed, killedClose)
	}
}
