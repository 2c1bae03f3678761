package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Interactive is an ssh run whose keyboard-interactive prompts go to an
// askpass program (SSH_ASKPASS_REQUIRE=force), as a person at a terminal
// would see them: each prompt is saved, and the answer is given when the
// test calls Answer.
type Interactive struct {
	dir    string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

const askpassScript = `#!/bin/sh
# Saves the prompt, then waits for the test's answer (an empty line: Enter).
d="$(dirname "$0")"
n=$(ls "$d"/prompt.* 2>/dev/null | wc -l)
printf '%s' "$1" > "$d/prompt.$n.tmp" && mv "$d/prompt.$n.tmp" "$d/prompt.$n"
i=0
while [ ! -e "$d/answer.$n" ]; do
  sleep 0.1; i=$((i+1)); [ $i -gt 3000 ] && exit 1
done
cat "$d/answer.$n"
`

// SSHInteractive starts ssh to the bastion without BatchMode, with extra
// options (e.g. "PubkeyAuthentication=no"), and args as the command.
// key may be nil.
func (b *Bastion) SSHInteractive(key *Key, options []string, args ...string) *Interactive {
	b.t.Helper()
	dir := b.t.TempDir()
	ask := filepath.Join(dir, "askpass")
	if err := os.WriteFile(ask, []byte(askpassScript), 0o755); err != nil {
		b.t.Fatal(err)
	}
	var argv []string
	base := baseArgs(b.Port, b.KnownHosts, key, "accept-new")
	for i := 0; i < len(base); i++ {
		// BatchMode disables keyboard-interactive; LogLevel INFO shows the
		// server's messages (instructions) as a person would see them.
		if base[i] == "-o" && i+1 < len(base) && (base[i+1] == "BatchMode=yes" || base[i+1] == "LogLevel=ERROR") {
			i++
			continue
		}
		argv = append(argv, base[i])
	}
	argv = append(argv, "-o", "BatchMode=no", "-o", "LogLevel=INFO")
	for _, o := range options {
		argv = append(argv, "-o", o)
	}
	argv = append(argv, "127.0.0.1")
	argv = append(argv, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	x := &Interactive{dir: dir, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{}), cancel: cancel}
	x.cmd = exec.CommandContext(ctx, "ssh", argv...)
	x.cmd.Env = append(os.Environ(), "SSH_ASKPASS="+ask, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
	x.cmd.Stdout, x.cmd.Stderr = x.stdout, x.stderr
	x.cmd.Stdin = nil
	if err := x.cmd.Start(); err != nil {
		cancel()
		b.t.Fatal(err)
	}
	go func() { x.err = x.cmd.Wait(); close(x.done) }()
	b.t.Cleanup(func() { cancel(); <-x.done })
	return x
}

// Prompt waits for prompt number n (from 0) and returns its text.
func (x *Interactive) Prompt(t testing.TB, n int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(x.dir, fmt.Sprintf("prompt.%d", n))); err == nil {
			return string(b)
		}
		select {
		case <-x.done:
			t.Fatalf("ssh ended before prompt %d: %v\nstdout: %s\nstderr: %s", n, x.err, x.stdout.String(), x.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no prompt %d within 30 s\nstderr: %s", n, x.stderr.String())
	return ""
}

// Prompted reports whether any prompt was shown so far.
func (x *Interactive) Prompted() bool {
	m, _ := filepath.Glob(filepath.Join(x.dir, "prompt.*"))
	return len(m) > 0
}

// Answer answers prompt n (Enter, after text).
func (x *Interactive) Answer(t testing.TB, n int, text string) {
	t.Helper()
	p := filepath.Join(x.dir, fmt.Sprintf("answer.%d", n))
	if err := os.WriteFile(p+".tmp", []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
}

// Wait waits for ssh to end and returns its result.
func (x *Interactive) Wait(t testing.TB) Result {
	t.Helper()
	select {
	case <-x.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("ssh did not end within 2 minutes\nstderr: %s", x.stderr.String())
	}
	code := 0
	if x.err != nil {
		code = -1
		if ee, ok := x.err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return Result{Stdout: x.stdout.String(), Stderr: x.stderr.String(), Code: code}
}

var userCodeRe = regexp.MustCompile(`Code:\s+(\S+)`)

// UserCode extracts the device-flow user code from a bastion prompt.
func UserCode(t testing.TB, prompt string) string {
	t.Helper()
	m := userCodeRe.FindStringSubmatch(prompt)
	if m == nil {
		t.Fatalf("no user code in the prompt:\n%s", prompt)
	}
	return strings.TrimSpace(m[1])
}

// Kill ends the ssh client at once, as a user closing the terminal would.
func (x *Interactive) Kill() {
	if x.cmd != nil && x.cmd.Process != nil {
		_ = x.cmd.Process.Kill()
		// The askpass child holds ssh's output pipes until it gets an
		// answer: release every prompt it may be waiting on.
		for n := 0; n < 16; n++ {
			_ = os.WriteFile(filepath.Join(x.dir, fmt.Sprintf("answer.%d", n)), nil, 0o600)
		}
		<-x.done
	}
}
