package e2e

import (
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// Each of these must be refused with a reason, and, where OpenSSH keeps the
// connection going, the command must still run.
func TestUnsupportedFeaturesRefusedWithReason(t *testing.T) {
	b, alice := admin(t, "")

	t.Run("agent forwarding -A", func(t *testing.T) {
		r := b.SSHRun(harness.Run{Key: &alice, Flags: []string{"-A"}, Args: []string{"whoami"}, Agent: harness.StartAgent(t)})
		mustOK(t, r, "whoami with -A")
		if !strings.Contains(r.Stdout, "alice") || !strings.Contains(r.Stderr, "agent forwarding (ssh -A) refused") {
			t.Fatalf("stdout %q stderr %q", r.Stdout, r.Stderr)
		}
	})
	t.Run("X11 forwarding -X", func(t *testing.T) {
		t.Setenv("DISPLAY", "127.0.0.1:93")
		r := b.SSHRun(harness.Run{Key: &alice, Flags: []string{"-X"}, Args: []string{"whoami"}, Options: []string{"LogLevel=INFO"}})
		mustOK(t, r, "whoami with -X")
		if !strings.Contains(r.Stdout, "alice") || !strings.Contains(r.Stderr, "X11 forwarding (ssh -X) refused") {
			t.Fatalf("stdout %q stderr %q", r.Stdout, r.Stderr)
		}
	})
	t.Run("remote forwarding -R", func(t *testing.T) {
		r := b.SSHRun(harness.Run{Key: &alice, Flags: []string{"-R", "0:x:1"}, Args: []string{"whoami"}, Options: []string{"LogLevel=INFO"}})
		if !strings.Contains(r.Combined(), "remote port forwarding") {
			t.Fatalf("exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
		}
		r = b.SSHRun(harness.Run{Key: &alice, Flags: []string{"-R", "0:x:1"}, Options: []string{"ExitOnForwardFailure=yes", "LogLevel=INFO"}, Args: []string{"whoami"}})
		if r.Code == 0 || !strings.Contains(r.Stderr, "remote port forwarding failed") {
			t.Fatalf("with ExitOnForwardFailure: exit %d stderr %q", r.Code, r.Stderr)
		}
	})
	t.Run("unknown subsystem", func(t *testing.T) {
		r := b.SSHRun(harness.Run{Key: &alice, Flags: []string{"-s"}, Args: []string{"nosuch"}})
		if r.Code == 0 || !strings.Contains(r.Stderr, `subsystem "nosuch" is not available`) {
			t.Fatalf("exit %d stderr %q", r.Code, r.Stderr)
		}
	})
	t.Run("unknown command", func(t *testing.T) {
		r := b.SSH(alice, "frobnicate", "--now")
		if r.Code != 127 || !strings.Contains(r.Stderr, `unknown command "frobnicate"`) {
			t.Fatalf("exit %d stderr %q", r.Code, r.Stderr)
		}
	})
	t.Run("auth none", func(t *testing.T) {
		r := b.SSHRun(harness.Run{Key: &alice, Options: []string{"PreferredAuthentications=none"}, Args: []string{"whoami"}})
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") || strings.Contains(r.Stdout, "alice") {
			t.Fatalf("none auth: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("auth password", func(t *testing.T) {
		r := b.SSHRun(harness.Run{Key: &alice, Options: []string{"PreferredAuthentications=password,keyboard-interactive"}, Args: []string{"whoami"}})
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied (publickey)") {
			t.Fatalf("password auth: exit %d stderr %q", r.Code, r.Stderr)
		}
	})

	// Every refusal is audited.
	evs := auditEvents(t, b, alice)
	want := map[string]bool{"request.refuse": false, "subsystem.refuse": false, "command.refuse": false, "auth.fail": false}
	for _, e := range evs {
		if _, ok := want[e.Action]; ok {
			want[e.Action] = true
		}
	}
	for a, ok := range want {
		if !ok {
			t.Errorf("no %s event in the audit log", a)
		}
	}
}
