package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Pane is a real terminal: a tmux session on its own server socket running
// one command, read back with capture-pane as a person would see it.
type Pane struct {
	t        testing.TB
	socket   string
	exitFile string
}

// StartPane runs argv in a new detached tmux session of width x height
// cells. When argv ends, its exit status is kept for ExitCode.
func StartPane(t testing.TB, width, height int, env []string, argv ...string) *Pane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is not installed (%v); `make test` installs it", err)
	}
	dir := t.TempDir()
	p := &Pane{t: t, socket: filepath.Join(dir, "tmux.sock"), exitFile: filepath.Join(dir, "exit")}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	// The shell writes the exit status, then stays a moment so that the
	// last screen can still be captured.
	script := fmt.Sprintf("%s %s; echo $? > %s; sleep 30", strings.Join(env, " "), strings.Join(quoted, " "), p.exitFile)
	cmd := exec.Command("tmux", "-S", p.socket, "-f", "/dev/null", "new-session", "-d",
		"-x", strconv.Itoa(width), "-y", strconv.Itoa(height), "sh", "-c", script)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", p.socket, "kill-server").Run() })
	return p
}

// Send types keys, in tmux send-keys syntax ("Enter", "C-c"); Type sends
// literal text.
func (p *Pane) Send(keys ...string) {
	p.t.Helper()
	args := append([]string{"-S", p.socket, "send-keys", "-t", "0"}, keys...)
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys %q: %v\n%s", keys, err, out)
	}
}

// Type sends text literally, key by key.
func (p *Pane) Type(text string) {
	p.t.Helper()
	if out, err := exec.Command("tmux", "-S", p.socket, "send-keys", "-t", "0", "-l", text).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys -l %q: %v\n%s", text, err, out)
	}
}

// Screen is what the pane shows now, without colours.
func (p *Pane) Screen() string {
	p.t.Helper()
	out, err := exec.Command("tmux", "-S", p.socket, "capture-pane", "-p", "-t", "0").CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// WaitFor waits until ok accepts the screen, and returns that screen; it
// fails the test with the last screen after limit.
func (p *Pane) WaitFor(what string, limit time.Duration, ok func(screen string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	var s string
	for time.Now().Before(deadline) {
		if s = p.Screen(); ok(s) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("waited %s for %s; the screen shows:\n%s", limit, what, s)
	return s
}

// WaitText waits until the screen shows every one of subs.
func (p *Pane) WaitText(limit time.Duration, subs ...string) string {
	p.t.Helper()
	return p.WaitFor(fmt.Sprintf("%q", subs), limit, func(s string) bool { return Contains(s, subs...) })
}

// WaitMatch waits until re matches the screen and returns the match and
// its submatches.
func (p *Pane) WaitMatch(limit time.Duration, re *regexp.Regexp) []string {
	p.t.Helper()
	var m []string
	p.WaitFor(re.String(), limit, func(s string) bool { m = re.FindStringSubmatch(s); return m != nil })
	return m
}

// ExitCode waits for the command to end and returns its exit status.
func (p *Pane) ExitCode(limit time.Duration) int {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(p.exitFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			n, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				p.t.Fatalf("exit file holds %q", b)
			}
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("the command did not end within %s; the screen shows:\n%s", limit, p.Screen())
	return -1
}

// ScreenWithStyles is the screen with its colours and attributes as escape
// sequences (capture-pane -e).
func (p *Pane) ScreenWithStyles() string {
	p.t.Helper()
	out, _ := exec.Command("tmux", "-S", p.socket, "capture-pane", "-e", "-p", "-t", "0").CombinedOutput()
	return string(out)
}

// Resize changes the terminal's size, as a person resizing the window.
func (p *Pane) Resize(width, height int) {
	p.t.Helper()
	if out, err := exec.Command("tmux", "-S", p.socket, "resize-window", "-t", "0", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height)).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux resize-window: %v\n%s", err, out)
	}
}
