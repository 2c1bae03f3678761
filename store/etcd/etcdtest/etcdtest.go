package etcdtest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is one etcd member on loopback, with its own data dir, that a test
// can kill and start again on the same ports and data.
type Proc struct {
	// ClientURL is where clients connect, e.g. "http://127.0.0.1:40123".
	ClientURL string

	bin, dir, peer string
	cmd            *exec.Cmd
	exited         chan struct{}
	mu             sync.Mutex
	out            bytes.Buffer
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// Start starts an etcd member and waits until it is healthy. It is killed
// when the test ends, and its output is logged if the test failed.
func Start(t testing.TB) *Proc {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed (%v): run `bash scripts/install-kube.sh` (or `make test`, which runs it)", err)
	}
	p := &Proc{bin: bin, dir: filepath.Join(t.TempDir(), "etcd"),
		ClientURL: "http://127.0.0.1:" + FreePort(t), peer: "http://127.0.0.1:" + FreePort(t)}
	p.Start(t)
	t.Cleanup(func() {
		p.Kill(t)
		if t.Failed() {
			t.Logf("etcd output:\n%s", p.Output())
		}
	})
	return p
}

// Output returns what etcd wrote so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Write collects etcd's output.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Start runs etcd (again) on p's ports and data dir, and waits for /health.
func (p *Proc) Start(t testing.TB) {
	t.Helper()
	p.cmd = exec.Command(p.bin,
		"--name=default", "--data-dir="+p.dir,
		"--listen-client-urls="+p.ClientURL, "--advertise-client-urls="+p.ClientURL,
		"--listen-peer-urls="+p.peer, "--initial-advertise-peer-urls="+p.peer,
		"--initial-cluster=default="+p.peer, "--initial-cluster-state=new",
		"--logger=zap", "--log-level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.ClientURL + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"health":"true"`) {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("etcd exited:\n%s", p.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s not healthy after 30s (%v):\n%s", p.ClientURL, err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends etcd with SIGKILL and waits for it.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("etcd did not exit after SIGKILL")
	}
}
