package harness

import (
	"bytes"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// StartEcho runs a TCP echo server on loopback; it closes when the test
// ends.
func StartEcho(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// Forward is a running `ssh -N -L` through the bastion.
type Forward struct {
	Local  string // 127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

// StartForward runs `ssh -N -L 127.0.0.1:P:spec` with key and waits until
// the local port listens. spec is "host:port" on the bastion side.
func (b *Bastion) StartForward(key Key, spec string) *Forward {
	b.t.Helper()
	port := freePort(b.t)
	args := append(b.SSHArgs(key), "-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:"+port+":"+spec, "127.0.0.1")
	f := &Forward{Local: "127.0.0.1:" + port, stderr: &syncBuffer{}, done: make(chan struct{})}
	f.cmd = exec.Command("ssh", args...)
	f.cmd.Stderr = f.stderr
	if err := f.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	go func() { _ = f.cmd.Wait(); close(f.done) }()
	b.t.Cleanup(f.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// Ready once the port is taken; probing with a connection would
		// open (and audit) a forward of its own.
		if l, err := net.Listen("tcp", f.Local); err != nil {
			return f
		} else {
			l.Close()
		}
		select {
		case <-f.done:
			b.t.Fatalf("ssh -L exited: %s", f.stderr.String())
		case <-time.After(30 * time.Millisecond):
		}
	}
	b.t.Fatalf("ssh -L did not listen on %s: %s", f.Local, f.stderr.String())
	return nil
}

// Stop ends the ssh process.
func (f *Forward) Stop() {
	if f.cmd.Process != nil {
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

// Stderr returns what ssh printed (channel open failures land here).
func (f *Forward) Stderr() string { return f.stderr.String() }

// Echo sends payload through c and reads it back.
func Echo(t testing.TB, c net.Conn, payload []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("write through forward: %v", err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back through forward: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("echo through forward returned other bytes")
	}
	_ = c.SetDeadline(time.Time{})
}

// WaitClosed waits until the peer closes c and returns when it did.
func WaitClosed(t testing.TB, c net.Conn, limit time.Duration) time.Time {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("forward still open after %s", limit)
		}
		return time.Now()
	}
}

// Contains reports whether s has every one of subs.
func Contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
