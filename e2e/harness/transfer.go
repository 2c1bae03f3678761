package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FileArgs are the options of sftp and scp for this bastion: the same as
// ssh's, with -P for the port.
func (b *Bastion) FileArgs(key Key) []string {
	args := b.SSHArgs(key)
	for i := range args {
		if args[i] == "-p" {
			args[i] = "-P"
		}
	}
	return args
}

// programTimeout bounds every program a test runs.
var programTimeout = 2 * time.Minute

// RunProgram runs a program and returns its Result; it fails the test if
// the program cannot be started or runs longer than two minutes.
func RunProgram(t testing.TB, stdin string, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), programTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// sftp and scp run ssh as a child that holds the output pipes.
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not end within %s\nstdout: %s\nstderr: %s", name, args, programTimeout, out.String(), errb.String())
	}
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// WriteRandomFile writes size pseudo-random bytes (incompressible, fast)
// to path and returns their SHA-256.
func WriteRandomFile(t testing.TB, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{byte(size), 7})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = src.Read(buf[:n])
		if _, err := io.MultiWriter(f, h).Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FileSHA256 is the SHA-256 of a file's contents.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RSS samples a process's resident set size until stop is called, and
// returns the baseline and the peak, in bytes.
type RSS struct {
	pid            int
	mu             sync.Mutex
	Baseline, Peak int64
	stop           chan struct{}
	done           chan struct{}
}

// WatchRSS starts sampling pid every 20 ms.
func WatchRSS(t testing.TB, pid int) *RSS {
	t.Helper()
	r := &RSS{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	base, err := rssOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	r.Baseline, r.Peak = base, base
	go func() {
		defer close(r.done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tk.C:
				if v, err := rssOf(pid); err == nil {
					r.mu.Lock()
					if v > r.Peak {
						r.Peak = v
					}
					r.mu.Unlock()
				}
			}
		}
	}()
	return r
}

// Stop ends sampling and returns the growth over the baseline.
func (r *RSS) Stop() int64 {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Peak - r.Baseline
}

func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
