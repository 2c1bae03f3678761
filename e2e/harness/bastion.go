package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/bastion once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "bastion-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bastion")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/bastion")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RemoveBinary deletes the binary built by Binary; TestMain calls it.
func RemoveBinary() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	removeSKProvider()
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Options configure a bastion under test.
type Options struct {
	// DataDir reuses a data directory (for restart tests); a temp one is
	// made when empty.
	DataDir string
	// Admin and AdminKeys bootstrap an admin, as `make run` does.
	Admin     string
	AdminKeys []Key
	// Config is extra YAML appended to the generated config.
	Config string
	Env    []string
	// LogLevel defaults to debug.
	LogLevel string
	// StrictAddresses leaves out the generated resource_policy, which
	// allows 127.0.0.0/8 for Resources made over ssh (the harness's
	// targets run on loopback); Config may then give its own.
	StrictAddresses bool
}

// Bastion is a running bastion process.
type Bastion struct {
	t          testing.TB
	opts       Options
	Dir        string
	DataDir    string
	ConfigPath string
	KnownHosts string
	Addr       string // 127.0.0.1:PORT
	Port       string
	Metrics    string
	cmd        *exec.Cmd
	logs       *syncBuffer
	done       chan struct{}
}

// Start runs the bastion on a free loopback port and waits until it
// listens. It is stopped when the test ends.
func Start(t testing.TB, opts Options) *Bastion {
	t.Helper()
	dir := t.TempDir()
	b := &Bastion{t: t, opts: opts, Dir: dir, KnownHosts: filepath.Join(dir, "known_hosts")}
	b.DataDir = opts.DataDir
	if b.DataDir == "" {
		b.DataDir = filepath.Join(dir, "data")
	}
	b.ConfigPath = filepath.Join(dir, "config.yaml")
	b.writeConfig("127.0.0.1:0")
	t.Cleanup(b.Stop)
	b.start()
	return b
}

// writeConfig writes the generated config; listen is kept across restarts
// so that clients reconnect to the same address, as they would in real life.
func (b *Bastion) writeConfig(listen string) {
	lvl := b.opts.LogLevel
	if lvl == "" {
		lvl = "debug"
	}
	policy := "resource_policy:\n  allow_cidrs: [127.0.0.0/8]\n"
	if b.opts.StrictAddresses {
		policy = ""
	}
	cfg := fmt.Sprintf("listen: %s\nmetrics_listen: 127.0.0.1:0\ndata_dir: %s\nlog:\n  format: text\n  level: %s\n%s%s\n",
		listen, b.DataDir, lvl, policy, b.opts.Config)
	if err := os.WriteFile(b.ConfigPath, []byte(cfg), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

var listenRe = regexp.MustCompile(`msg="bastion listening" addr=(\S+) metrics=(\S+)`)

func (b *Bastion) start() {
	t := b.t
	t.Helper()
	args := []string{"serve", "--config", b.ConfigPath}
	if b.opts.Admin != "" {
		args = append(args, "--admin", b.opts.Admin)
		for _, k := range b.opts.AdminKeys {
			args = append(args, "--admin-key", k.PubPath)
		}
	}
	b.logs = &syncBuffer{}
	b.cmd = exec.Command(Binary(t), args...)
	b.cmd.Env = append(os.Environ(), b.opts.Env...)
	b.cmd.Stdout = b.logs
	b.cmd.Stderr = b.logs
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRe.FindStringSubmatch(b.logs.String()); m != nil {
			b.Addr, b.Metrics = m[1], m[2]
			b.Port = b.Addr[strings.LastIndex(b.Addr, ":")+1:]
			return
		}
		select {
		case <-b.done:
			t.Fatalf("bastion exited during start:\n%s", b.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = b.cmd.Process.Kill()
	t.Fatalf("bastion did not start listening within 30s:\n%s", b.logs.String())
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 20 s).
func (b *Bastion) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
		b.t.Errorf("bastion did not stop within 20s of SIGTERM:\n%s", b.logs.String())
	}
}

// Kill sends SIGKILL, as a crash would.
func (b *Bastion) Kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
}

// Restart stops the bastion and starts it again on the same data dir. The
// port changes; KnownHosts stays, so a changed host key would fail ssh.
func (b *Bastion) Restart() {
	b.t.Helper()
	b.Stop()
	b.writeConfig(b.Addr)
	b.start()
}

// Exited reports whether the process has ended.
func (b *Bastion) Exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// Logs returns everything the bastion printed so far.
func (b *Bastion) Logs() string { return b.logs.String() }

// SyncBuffer collects a process's output while a test reads it.
type SyncBuffer = syncBuffer

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Signal sends sig to the bastion process.
func (b *Bastion) Signal(sig os.Signal) {
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Signal(sig)
	}
}

// Pid is the running bastion's process id (0 when it is not running).
func (b *Bastion) Pid() int {
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}
