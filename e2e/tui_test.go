package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// hasLine reports whether one line of the screen, trimmed, is exactly want.
func hasLine(screen, want string) bool {
	for _, l := range strings.Split(screen, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// The front door, as a person uses it: real ssh -tt in a real terminal
// (tmux), the TUI read back with capture-pane.
func TestTUIRoundTripToAHostShell(t *testing.T) {
	b, alice, bob := withBob(t)
	ca := b.SSH(alice, "ca")
	mustOK(t, ca, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(ca.Stdout)})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root",
		"--project", "payments", "--label", "env=prod"), "resources add host-1")
	mustOK(t, b.SSH(alice, "resources", "add", "host-2", "--kind", "ssh", "--address", sshd.Addr, "--login", "root",
		"--project", "web"), "resources add host-2")
	mustOK(t, b.SSH(alice, "resources", "add", "secret-1", "--kind", "ssh", "--address", sshd.Addr, "--project", "vault"), "resources add secret-1")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant act on host-1")
	// bob may see host-2 (so it is listed, locked) but not reach it.
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-2#view@user:bob"), "grant view on host-2")

	argv := append([]string{"ssh", "-tt"}, b.SSHArgs(bob)...)
	pane := harness.StartPane(t, 100, 30, nil, append(argv, "127.0.0.1")...)

	s := pane.WaitText(20*time.Second, "host-1", "host-2", "NAME", "KIND", "PROJECT", "LABELS")
	if strings.Contains(s, "secret-1") {
		t.Fatalf("a Resource bob may not see is listed:\n%s", s)
	}
	if !harness.Contains(s, "payments", "env=prod") {
		t.Fatalf("columns lack project or labels:\n%s", s)
	}

	// The locked one says how to ask for it.
	pane.Type("host-2")
	s = pane.WaitText(10*time.Second, "request create host-2")
	pane.Send("Enter")
	s = pane.WaitText(10*time.Second, "host-2 is locked")
	pane.Send("Escape")

	// Typing narrows the list.
	pane.Type("host-1")
	s = pane.WaitFor("the list narrowed to host-1", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "1 of 2") && !strings.Contains(s, "host-2")
	})
	if !strings.Contains(s, "-t host-1") {
		t.Fatalf("detail pane lacks the shell command:\n%s", s)
	}

	// enter opens a shell on the target.
	pane.Send("Enter")
	pane.WaitText(20*time.Second, "connecting to host-1")
	time.Sleep(time.Second) // let the remote shell print its prompt
	pane.Type("echo hello")
	pane.Send("Enter")
	pane.WaitFor("the output hello on a line of its own", 20*time.Second, func(s string) bool { return hasLine(s, "hello") })

	// exit returns to the TUI.
	pane.Type("exit")
	pane.Send("Enter")
	pane.WaitText(20*time.Second, "NAME", "KIND", "host-2")
	pane.Send("q")
	if code := pane.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d:\n%s", code, pane.Screen())
	}

	// The shell was recorded; replaying it shows hello.
	r := b.SSH(bob, "recordings", "list", "-o", "json")
	mustOK(t, r, "recordings list")
	var recs []store.Session
	if err := json.Unmarshal([]byte(r.Stdout), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("recordings list: %v %s", err, r.Stdout)
	}
	cast := b.SSH(bob, "recordings", "export", recs[0].Recording)
	mustOK(t, cast, "recordings export")
	lines := strings.Split(strings.TrimSpace(cast.Stdout), "\n")
	var hdr map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil || hdr["version"] != float64(2) || hdr["width"] != float64(100) {
		t.Fatalf("not an asciicast v2 header of the pane's width: %q", lines[0])
	}
	// asciinema itself reads the exported file.
	castFile := filepath.Join(t.TempDir(), "session.cast")
	if err := os.WriteFile(castFile, []byte(cast.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	// It wants a terminal, so it plays in one.
	player := harness.StartPane(t, 100, 30, nil, "asciinema", "play", "-s", "20", castFile)
	if code := player.ExitCode(30 * time.Second); code != 0 {
		t.Fatalf("asciinema play exited %d:\n%s", code, player.Screen())
	}
	if s := player.Screen(); !hasLine(s, "hello") {
		t.Fatalf("asciinema play does not show hello:\n%s", s)
	}
	play := b.SSH(bob, "recordings", "play", recs[0].Recording, "--speed", "20")
	mustOK(t, play, "recordings play")
	// hello on a line of its own: the output, not the typed command.
	if !regexp.MustCompile(`[\r\n]hello\r\n`).MatchString(play.Stdout) {
		t.Fatalf("the replay lacks hello:\n%q", play.Stdout)
	}
	opened := 0
	for _, e := range auditEvents(t, b, alice, "--action", "shell.open") {
		if e.Actor == "bob" && e.Target == "host-1" && e.Details["recording"] == recs[0].Recording {
			opened++
		}
	}
	if opened != 1 {
		t.Fatalf("shell.open with the recording id: %d, want 1", opened)
	}

	// Without act, host-2 cannot be opened by name either, and says why.
	r = b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-tt"}, Args: []string{"host-2"}})
	if r.Code == 0 || !harness.Contains(r.Combined(), "user:bob lacks act on resource:host-2", "request create host-2") {
		t.Fatalf("host-2 by name: exit %d %q", r.Code, r.Combined())
	}
}

// Without a terminal, `ssh bastion` lists the Resources in plain text.
func TestFrontDoorWithoutAPTY(t *testing.T) {
	b, alice, bob := withBob(t)
	mustOK(t, b.SSH(alice, "resources", "add", "db-1", "--kind", "tcp", "--address", "127.0.0.1:5432", "--port", "5432"), "resources add")
	mustOK(t, b.SSH(alice, "resources", "add", "db-2", "--kind", "tcp", "--address", "127.0.0.1:5433", "--port", "5433"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:db-1#act@user:bob"), "grant")
	r := b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-T"}})
	mustOK(t, r, "ssh -T bastion")
	if !harness.Contains(r.Stdout, "db-1", "reachable") || strings.Contains(r.Stdout, "db-2") {
		t.Fatalf("plain list:\n%s", r.Stdout)
	}
}

// The TUI follows the window size, fits 80x24, and has no colours with
// NO_COLOR (sent by the client with SendEnv).
func TestTUIWindowSizeAndNoColor(t *testing.T) {
	b, alice, bob := withBob(t)
	mustOK(t, b.SSH(alice, "resources", "add", "db-1", "--kind", "tcp", "--address", "127.0.0.1:5432", "--port", "5432"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:db-1#act@user:bob"), "grant")
	argv := append([]string{"ssh", "-tt", "-o", "SendEnv=NO_COLOR"}, b.SSHArgs(bob)...)
	argv = append(argv, "127.0.0.1")

	pane := harness.StartPane(t, 120, 40, nil, argv...)
	pane.WaitText(20*time.Second, "db-1", "Help")
	if !strings.Contains(pane.ScreenWithStyles(), "\x1b[") {
		t.Fatal("a colour terminal shows no styles")
	}
	// The detail pane's rule spans the whole width.
	headerWidth := func(s string) int {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "─ db-1 ") {
				return len([]rune(strings.TrimRight(l, " ")))
			}
		}
		return 0
	}
	pane.WaitFor("the detail rule to span 120 cells", 10*time.Second, func(s string) bool { return headerWidth(s) == 120 })
	pane.Resize(80, 24)
	s := pane.WaitFor("the detail rule to span 80 cells", 10*time.Second, func(s string) bool { return headerWidth(s) == 80 })
	if !harness.Contains(s, "db-1", "-N -L 5432:db-1:5432", "q quit") {
		t.Fatalf("at 80x24 the list, the command or the keys are missing:\n%s", s)
	}
	pane.Send("q")
	if code := pane.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: exit %d", code)
	}

	plain := harness.StartPane(t, 80, 24, []string{"NO_COLOR=1"}, argv...)
	plain.WaitText(20*time.Second, "db-1", "Help")
	if s := plain.ScreenWithStyles(); regexp.MustCompile(`\x1b\[[0-9;]*[1-9][0-9;]*m`).MatchString(s) {
		t.Fatalf("NO_COLOR screen has colours or attributes:\n%q", s)
	}
	plain.Send("q")
	if code := plain.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: exit %d", code)
	}
}
