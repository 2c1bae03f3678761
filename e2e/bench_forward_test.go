package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
)

// startSink counts what it receives and reports when want bytes arrived.
func startSink(b *testing.B) (string, func(want int64) <-chan struct{}) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	var got atomic.Int64
	var mu sync.Mutex
	var waiter chan struct{}
	var target int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						v := got.Add(int64(n))
						mu.Lock()
						if waiter != nil && v >= target {
							close(waiter)
							waiter = nil
						}
						mu.Unlock()
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), func(want int64) <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		got.Store(0)
		target = want
		waiter = make(chan struct{})
		return waiter
	}
}

// pushThrough runs `ssh -N -c aes128-gcm -L` with args and sends size bytes
// through it into the sink; it returns MiB/s.
func pushThrough(b *testing.B, sshArgs []string, spec string, size int64, expect func(int64) <-chan struct{}) float64 {
	port := freeLocalPort(b)
	args := append(append([]string{}, sshArgs...), "-N", "-c", "aes128-gcm@openssh.com", "-o", "ExitOnForwardFailure=yes",
		"-L", "127.0.0.1:"+port+":"+spec, "127.0.0.1")
	cmd := exec.Command("ssh", args...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var c net.Conn
	for i := 0; i < 400; i++ {
		if !harness.Listening("127.0.0.1:" + port) {
			time.Sleep(25 * time.Millisecond)
			continue
		}
		var err error
		if c, err = net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			break
		}
	}
	if c == nil {
		b.Fatal("ssh -L did not come up")
	}
	defer c.Close()
	done := expect(size)
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("sink did not receive everything")
	}
	return float64(size) / (1 << 20) / time.Since(start).Seconds()
}

func freeLocalPort(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// BenchmarkThroughput (P1): 1 GiB through `ssh -L` via the bastion and via
// Debian sshd's -L, same OpenSSH client, same cipher, same sink, one run.
func BenchmarkThroughput(b *testing.B) {
	key := harness.NewKey(b, b.TempDir(), "bench")
	bastion := harness.Start(b, harness.Options{Admin: "bench", AdminKeys: []harness.Key{key}, LogLevel: "info", Env: benchEnv()})
	b.Logf("metrics at %s", bastion.Metrics)
	sshd := harness.StartSSHD(b, harness.SSHDOptions{AuthorizedKeys: []string{key.Public}})
	sink, expect := startSink(b)
	if r := bastion.SSH(key, "resources", "add", "sink", "--kind", "tcp", "--address", sink, "--port", "9"); r.Code != 0 {
		b.Fatal(r.Stderr)
	}
	const size = 1 << 30
	sshdArgs := []string{"-F", "/dev/null", "-p", sshd.Port, "-i", key.Path, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"}
	for i := 0; i < b.N; i++ {
		ours := pushThrough(b, bastion.SSHArgs(key), "sink:9", size, expect)
		peer := pushThrough(b, sshdArgs, sink, size, expect)
		b.ReportMetric(ours, "bastion_MiB/s")
		b.ReportMetric(peer, "sshd_MiB/s")
		b.ReportMetric(ours/peer, "ratio")
	}
}

// BenchmarkConnectionsForward (P2, forwards): each connection does the
// handshake, auth, the act check and an audited -W style open and close,
// against sshd doing the same direct-tcpip open.
func BenchmarkConnectionsForward(b *testing.B) {
	key := harness.NewKey(b, b.TempDir(), "bench")
	bastion := harness.Start(b, harness.Options{Admin: "bench", AdminKeys: []harness.Key{key}, LogLevel: "info",
		Config: "auth:\n  failed_conns_per_source: 0\n"})
	sshd := harness.StartSSHD(b, harness.SSHDOptions{AuthorizedKeys: []string{key.Public}})
	echo := harness.StartEcho(b)
	if r := bastion.SSH(key, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7"); r.Code != 0 {
		b.Fatal(r.Stderr)
	}
	signer := loadSigner(b, key)
	const n, workers = 400, 8
	run := func(addr, target string, count int) float64 {
		cfg := &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
			HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}
		var next, failed atomic.Int64
		var first atomic.Value
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(count) {
					if err := forwardOnce(addr, target, cfg); err != nil {
						failed.Add(1)
						first.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d connections failed: %v", failed.Load(), first.Load())
		}
		return float64(count) / time.Since(start).Seconds()
	}
	for i := 0; i < b.N; i++ {
		run(bastion.Addr, "echo-svc:7", 20)
		run(sshd.Addr, echo, 20)
		ours := run(bastion.Addr, "echo-svc:7", n)
		peer := run(sshd.Addr, echo, n)
		b.ReportMetric(ours, "bastion_conns/s")
		b.ReportMetric(peer, "sshd_conns/s")
		b.ReportMetric(ours/peer, "ratio")
	}
}

func forwardOnce(addr, target string, cfg *gossh.ClientConfig) error {
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	conn, err := c.Dial("tcp", target)
	if err != nil {
		return err
	}
	if _, err := conn.Write([]byte("x")); err != nil {
		return err
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(conn, one); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	return conn.Close()
}

// benchEnv enables pprof on the bastion under test, plus BENCH_BASTION_ENV
// (e.g. GOGC=400) for experiments.
func benchEnv() []string {
	env := []string{"BASTION_PPROF=1"}
	if e := os.Getenv("BENCH_BASTION_ENV"); e != "" {
		env = append(env, e)
	}
	return env
}
