package e2e

import (
	"io"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
)

var metricLine = regexp.MustCompile(`(?m)^(go_goroutines|process_open_fds) (\d+)`)

func gauges(t *testing.T, b *harness.Bastion) (goroutines, fds int) {
	t.Helper()
	for _, m := range metricLine.FindAllStringSubmatch(metrics(t, b), -1) {
		v, _ := strconv.Atoi(m[2])
		if m[1] == "go_goroutines" {
			goroutines = v
		} else {
			fds = v
		}
	}
	return goroutines, fds
}

// Many concurrent connections, each opening forwards, for a bounded time
// on loopback: zero errors, and afterwards goroutines and open fds return
// to their baseline (both are exported in /metrics). BASTION_LOAD_CONNS
// sets the number of connections (default 1000).
func TestLoadWithoutLeaks(t *testing.T) {
	conns := 1000
	if v, err := strconv.Atoi(os.Getenv("BASTION_LOAD_CONNS")); err == nil && v > 0 {
		conns = v
	}
	b, alice := admin(t, "auth:\n  max_startups: 5000\n  max_startups_per_source: 5000\n  failed_conns_per_source: 0\n  pre_auth_timeout: 60s\n")
	echoResource(t, b, alice)
	signer := loadSigner(t, alice)
	// Let the server settle, then take the baseline.
	time.Sleep(500 * time.Millisecond)
	g0, f0 := gauges(t, b)

	cfg := &gossh.ClientConfig{User: "load", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 60 * time.Second}
	var failed atomic.Int64
	var firstErr atomic.Value
	var ready, release sync.WaitGroup
	release.Add(1)
	var done sync.WaitGroup
	sem := make(chan struct{}, 64) // bounds concurrent handshakes, not open conns
	for i := 0; i < conns; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			fail := func(err error) {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				ready.Done()
			}
			sem <- struct{}{}
			c, err := gossh.Dial("tcp", b.Addr, cfg)
			<-sem
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			var fwd []io.ReadWriteCloser
			for j := 0; j < 2; j++ {
				f, err := c.Dial("tcp", "echo-svc:7")
				if err != nil {
					fail(err)
					return
				}
				fwd = append(fwd, f)
			}
			ready.Done()
			// Every connection holds its forwards open at the same time.
			release.Wait()
			for _, f := range fwd {
				if _, err := f.Write([]byte("ping")); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				buf := make([]byte, 4)
				if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "ping" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				f.Close()
			}
		}()
	}
	ready.Wait()
	gPeak, fPeak := gauges(t, b)
	release.Done()
	done.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d errors under load; first: %v", n, firstErr.Load())
	}
	t.Logf("%d connections x 2 forwards: goroutines %d -> %d at peak; fds %d -> %d", conns, g0, gPeak, f0, fPeak)
	if fPeak < f0+conns {
		t.Fatalf("the load did not hold %d connections open at once (fds %d -> %d)", conns, f0, fPeak)
	}
	// After the clients closed, the server must come back to its baseline
	// (small slack for runtime and keepalive goroutines).
	waitFor(t, 60*time.Second, "goroutines and fds back to baseline", func() bool {
		g, f := gauges(t, b)
		return g <= g0+10 && f <= f0+5
	})
}
