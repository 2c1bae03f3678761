package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// A device login from an ssh without a terminal (no tty, no askpass: a
// script or a CI job) fails at once, saying that the login needs a
// terminal or a registered key, instead of waiting for the code's whole
// lifetime; the refusal is audited.
func TestOIDCDeviceLoginWithoutTerminalFailsAtOnce(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{})
	b, alice := oidcBastion(t, o)
	k := harness.NewKey(t, t.TempDir(), "fresh")

	// ssh keeps an option's first value: these win over SSHArgs' BatchMode
	// and LogLevel (INFO shows the server's message).
	args := append([]string{"-o", "BatchMode=no", "-o", "LogLevel=INFO"}, b.SSHArgs(k)...)
	args = append(args, "127.0.0.1", "whoami")
	// Bounded well below the code's lifetime (10 min): a client left
	// waiting fails the test.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	// A new session has no controlling terminal, so ssh cannot open
	// /dev/tty; stdin is /dev/null.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "SSH_ASKPASS") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ssh without a terminal was still waiting after 90 s:\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("ssh without a terminal: %v; want a failed login\n%s", err, out)
	}
	if !harness.Contains(string(out), "needs a terminal", "keys add") {
		t.Fatalf("the refusal does not say that the login needs a terminal or a registered key:\n%s", out)
	}
	found := false
	for _, e := range auditEvents(t, b, alice, "--action", "oidc.device.notty") {
		found = found || (e.Decision == "deny" && strings.Contains(e.Reason, "needs a terminal"))
	}
	if !found {
		t.Fatal("no oidc.device.notty deny event in the audit log")
	}
}
