package e2e

import (
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// Commands and shells on a Debian sshd target that trusts only the
// bastion's user CA (the user's own key is not authorised there).
func TestExecOnHostThroughTheBastionCA(t *testing.T) {
	b, alice, bob := withBob(t)
	r := b.SSH(bob, "ca")
	mustOK(t, r, "ca")
	caLine := strings.TrimSpace(r.Stdout)
	if !strings.HasPrefix(caLine, "ssh-ed25519 ") {
		t.Fatalf("ca printed %q", caLine)
	}
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: caLine})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add")

	r = b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "echo", "hi"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !harness.Contains(r.Stderr, "refused", "user:bob lacks act on resource:host-1", "request create host-1") {
		t.Fatalf("without act: exit %d stderr %q", r.Code, r.Stderr)
	}
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant")

	r = b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-tt"}, Args: []string{"host-1", "--", "echo", "hi"}})
	mustOK(t, r, "ssh -tt bastion host-1 -- echo hi")
	if strings.TrimSpace(r.Stdout) != "hi" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	r = b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "exit", "3"}})
	if r.Code != 3 {
		t.Fatalf("exit status not passed through: %d (%q)", r.Code, r.Stderr)
	}
	r = b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "cat"}, Stdin: "piped-through\n"})
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "piped-through" {
		t.Fatalf("stdin not passed: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	var opens, closes int
	for _, e := range auditEvents(t, b, alice, "--action", "shell.") {
		switch e.Action {
		case "shell.open":
			if e.Actor == "bob" && e.Details["login"] == "root" && e.Details["session"] != "" {
				opens++
			}
		case "shell.close":
			closes++
		}
	}
	if opens != 3 || closes != 3 {
		t.Fatalf("shell.open/close = %d/%d, want 3/3", opens, closes)
	}
}
