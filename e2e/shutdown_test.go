package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// SIGTERM stops accepting, tells live sessions, and drains for a bounded
// time before closing them.
func TestGracefulShutdownTellsAndDrainsLiveSessions(t *testing.T) {
	b, alice := admin(t, "drain_timeout: 2s\n")
	// `keys add` reads stdin until EOF: with stdin held open, the session
	// stays live until the server ends it.
	cmd := exec.Command("ssh", append(b.SSHArgs(alice), "127.0.0.1", "keys", "add", "alice")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, 20*time.Second, "a live session", func() bool {
		return strings.Contains(metrics(t, b), "bastion_ssh_sessions_active 1")
	})

	b.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("ssh session still open 30s after SIGTERM with a 2s drain")
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Fatalf("session was not told about the shutdown: %q", stderr.String())
	}
	waitFor(t, 30*time.Second, "the bastion to exit", b.Exited)
	if !strings.Contains(b.Logs(), "shutting down") {
		t.Fatalf("no shutdown log:\n%s", b.Logs())
	}
}

func metrics(t *testing.T, b *harness.Bastion) string {
	t.Helper()
	resp, err := http.Get("http://" + b.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// waitFor polls cond until it holds; the limit only bounds a hang, it is
// not a speed assertion.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", limit, what)
}
