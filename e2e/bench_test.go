package e2e

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
)

// connBench opens n connections with `workers` concurrent clients; each
// does the handshake, public-key auth and one exec, and checks its output.
func connBench(b *testing.B, addr string, signer gossh.Signer, cmd, want string, n, workers int) float64 {
	b.Helper()
	cfg := &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}
	var next, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := oneConn(addr, cfg, cmd, want); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if failed.Load() > 0 {
		b.Fatalf("%d of %d connections failed; first: %v", failed.Load(), n, firstErr.Load())
	}
	return float64(n) / el.Seconds()
}

func oneConn(addr string, cfg *gossh.ClientConfig, cmd, want string) error {
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Run(cmd); err != nil {
		return err
	}
	if !bytes.Contains(out.Bytes(), []byte(want)) {
		return fmt.Errorf("unexpected output %q", out.String())
	}
	return nil
}

func loadSigner(b testing.TB, k harness.Key) gossh.Signer {
	data, err := os.ReadFile(k.Path)
	if err != nil {
		b.Fatal(err)
	}
	s, err := gossh.ParsePrivateKey(data)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkConnections (P2): connections per second, each doing the
// handshake, public-key auth and `whoami`, side by side with Debian's
// OpenSSH sshd doing the same with `true`, in one run. Run it with
// -benchtime=1x: each iteration is a fixed batch per server.
func BenchmarkConnections(b *testing.B) {
	dir := b.TempDir()
	key := harness.NewKey(b, dir, "bench")
	bastion := harness.Start(b, harness.Options{Admin: "bench", AdminKeys: []harness.Key{key},
		Config: "auth:\n  failed_conns_per_source: 0\n", LogLevel: "info"})
	sshd := harness.StartSSHD(b, harness.SSHDOptions{AuthorizedKeys: []string{key.Public}, ForceCommand: "true"})
	signer := loadSigner(b, key)
	const n, workers = 400, 8
	for i := 0; i < b.N; i++ {
		// Warm both up, then measure each in turn.
		connBench(b, bastion.Addr, signer, "whoami", "bench", 20, workers)
		connBench(b, sshd.Addr, signer, "true", "", 20, workers)
		ours := connBench(b, bastion.Addr, signer, "whoami", "bench", n, workers)
		peer := connBench(b, sshd.Addr, signer, "true", "", n, workers)
		b.ReportMetric(ours, "bastion_conns/s")
		b.ReportMetric(peer, "sshd_conns/s")
		b.ReportMetric(ours/peer, "ratio")
	}
}
