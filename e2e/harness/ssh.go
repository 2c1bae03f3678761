package harness

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Key is an ed25519 key pair made with the real ssh-keygen.
type Key struct {
	Path        string // private key
	PubPath     string
	Public      string // authorized_keys line
	Fingerprint string // SHA256:...
}

// NewKey makes a key pair named name in dir.
func NewKey(t testing.TB, dir, name string) Key {
	t.Helper()
	path := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return keyAt(t, path)
}

// keyAt is the Key whose private half is at path and public half beside
// it, with its fingerprint as ssh-keygen -l gives it.
func keyAt(t testing.TB, path string) Key {
	t.Helper()
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fp, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", path+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(fp))
	if len(fields) < 2 {
		t.Fatalf("unexpected ssh-keygen -l output %q", fp)
	}
	return Key{Path: path, PubPath: path + ".pub", Public: strings.TrimSpace(string(pub)), Fingerprint: fields[1]}
}

// Result is what one ssh run produced.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Combined returns stdout and stderr together.
func (r Result) Combined() string { return r.Stdout + r.Stderr }

// Run describes one ssh invocation.
type Run struct {
	Key     *Key     // nil: no identity file
	Options []string // extra -o options, e.g. "PreferredAuthentications=none"
	Flags   []string // extra flags before the host, e.g. "-A", "-N"
	Args    []string // remote command
	Stdin   string
	Timeout time.Duration // default 60 s
	// Agent is an ssh-agent socket to use (IdentityAgent); none if empty.
	Agent string
	// StrictHostKey "yes" (the default after the first connection made
	// through this harness) or "accept-new".
	StrictHostKey string
}

// SSH runs the real OpenSSH client against the bastion with a key and a
// remote command, in BatchMode.
func (b *Bastion) SSH(key Key, args ...string) Result {
	b.t.Helper()
	return b.SSHRun(Run{Key: &key, Args: args})
}

// SSHRun runs the real OpenSSH client as described.
func (b *Bastion) SSHRun(r Run) Result {
	b.t.Helper()
	return runSSH(b.t, b.Port, b.KnownHosts, r)
}

// SSHArgs returns the base ssh argument list for this bastion, for tests
// that drive ssh themselves (ProxyJump, scp, sftp).
func (b *Bastion) SSHArgs(key Key) []string {
	return baseArgs(b.Port, b.KnownHosts, &key, "accept-new")
}

func baseArgs(port, knownHosts string, key *Key, strict string) []string {
	args := []string{
		"-F", "/dev/null",
		"-p", port,
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlias=bastion-under-test",
		"-o", "StrictHostKeyChecking=" + strict,
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "ConnectTimeout=20",
		"-o", "LogLevel=ERROR",
	}
	if key != nil {
		args = append(args, "-i", key.Path)
	}
	return args
}

func runSSH(t testing.TB, port, knownHosts string, r Run) Result {
	t.Helper()
	strict := r.StrictHostKey
	if strict == "" {
		strict = "accept-new"
		if _, err := os.Stat(knownHosts); err == nil {
			strict = "yes"
		}
	}
	// ssh keeps the first value of an option: the run's own options go
	// first so that they win over the defaults.
	var args []string
	for _, o := range r.Options {
		args = append(args, "-o", o)
	}
	args = append(args, baseArgs(port, knownHosts, r.Key, strict)...)
	if r.Agent != "" {
		for i := range args {
			if args[i] == "IdentityAgent=none" {
				args[i] = "IdentityAgent=" + r.Agent
			}
		}
	}
	args = append(args, r.Flags...)
	args = append(args, "127.0.0.1")
	args = append(args, r.Args...)
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin = strings.NewReader(r.Stdin)
	if r.Agent != "" {
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+r.Agent)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("running ssh: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ssh %v timed out after %s; stderr: %s", r.Args, timeout, res.Stderr)
	}
	return res
}

// StartAgent runs a real ssh-agent on a socket in a temp dir, stopped when
// the test ends.
func StartAgent(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("ssh-agent did not create its socket")
	return ""
}
