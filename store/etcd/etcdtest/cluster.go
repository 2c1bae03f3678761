package etcdtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is n etcd members on loopback forming one cluster, each with
// its own ports and data dir.
type Cluster struct {
	Members []*Member
}

// Member is one member of a Cluster, which a test can kill and start
// again on the same ports and data (it rejoins as an existing member).
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string

	bin, dir, cluster string
	started           bool
	cmd               *exec.Cmd
	exited            chan struct{}
	mu                sync.Mutex
	out               bytes.Buffer
}

// StartCluster starts an n-member etcd cluster and waits until every
// member is healthy (which needs a quorum). The members are killed when
// the test ends, and their output is logged if the test failed.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed (%v): run `bash scripts/install-kube.sh` (or `make test`, which runs it)", err)
	}
	dir := t.TempDir()
	c := &Cluster{}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.Kill(t)
			if t.Failed() {
				t.Logf("etcd member %s output:\n%s", m.Name, m.Output())
			}
		}
	})
	// A free port is free when FreePort looks, not always when etcd
	// binds it: other tests (other packages run in parallel) take ports
	// too. A member that could not bind makes the whole cluster start
	// again on new ports, in a new data dir.
	for attempt := 0; ; attempt++ {
		c.Members = nil
		var peers []string
		for i := 0; i < n; i++ {
			m := &Member{Name: fmt.Sprintf("m%d", i), bin: bin, dir: filepath.Join(dir, fmt.Sprintf("a%d-m%d", attempt, i)),
				ClientURL: "http://127.0.0.1:" + FreePort(t), PeerURL: "http://127.0.0.1:" + FreePort(t)}
			c.Members = append(c.Members, m)
			peers = append(peers, m.Name+"="+m.PeerURL)
		}
		for _, m := range c.Members {
			m.cluster = strings.Join(peers, ",")
			m.launch(t)
		}
		err := error(nil)
		for _, m := range c.Members {
			if err = m.healthy(); err != nil {
				break
			}
		}
		if err == nil {
			return c
		}
		if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
			for _, m := range c.Members {
				m.Kill(t)
			}
			continue
		}
		t.Fatal(err)
	}
}

// Endpoints returns every member's client URL.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// Output returns what the member wrote so far.
func (m *Member) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.String()
}

// Write collects the member's output.
func (m *Member) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.Write(b)
}

// Start runs the member again after Kill, on its ports and data dir, and
// waits until it is healthy (the others must still hold a quorum).
func (m *Member) Start(t testing.TB) {
	t.Helper()
	m.launch(t)
	m.waitHealthy(t)
}

func (m *Member) launch(t testing.TB) {
	t.Helper()
	state := "new"
	if m.started {
		state = "existing"
	}
	m.cmd = exec.Command(m.bin,
		"--name="+m.Name, "--data-dir="+m.dir,
		"--listen-client-urls="+m.ClientURL, "--advertise-client-urls="+m.ClientURL,
		"--listen-peer-urls="+m.PeerURL, "--initial-advertise-peer-urls="+m.PeerURL,
		"--initial-cluster="+m.cluster, "--initial-cluster-state="+state,
		"--initial-cluster-token=etcdtest", "--logger=zap", "--log-level=warn")
	m.cmd.Stdout, m.cmd.Stderr = m, m
	dieWithTest(m.cmd)
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start etcd member %s: %v", m.Name, err)
	}
	m.started = true
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(m.cmd, m.exited)
}

func (m *Member) waitHealthy(t testing.TB) {
	t.Helper()
	if err := m.healthy(); err != nil {
		t.Fatal(err)
	}
}

// healthy waits until the member answers healthy, and fails if it exits
// first or takes over 60 s.
func (m *Member) healthy() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.ClientURL + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"health":"true"`) {
				return nil
			}
		}
		select {
		case <-m.exited:
			return fmt.Errorf("etcd member %s exited:\n%s", m.Name, m.Output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd member %s at %s not healthy after 60s (%v):\n%s", m.Name, m.ClientURL, err, m.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends the member with SIGKILL and waits for it.
func (m *Member) Kill(t testing.TB) {
	t.Helper()
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("etcd member %s did not exit after SIGKILL", m.Name)
	}
}
