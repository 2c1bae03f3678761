package harness

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
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
	// Another process may take the port between freePort and ssh's
	// bind ("Address already in use"): try a new port.
	for range 3 {
		if f, retry := b.startForward(key, spec); !retry {
			return f
		}
	}
	b.t.Fatalf("ssh -L: address already in use three times")
	return nil
}

// startForward is one try of StartForward; retry is true when ssh could
// not bind its local port.
func (b *Bastion) startForward(key Key, spec string) (f *Forward, retry bool) {
	b.t.Helper()
	port := freePort(b.t)
	args := append(b.SSHArgs(key), "-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:"+port+":"+spec, "127.0.0.1")
	f = &Forward{Local: "127.0.0.1:" + port, stderr: &syncBuffer{}, done: make(chan struct{})}
	f.cmd = exec.Command("ssh", args...)
	f.cmd.Stderr = f.stderr
	if err := f.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	go func() { _ = f.cmd.Wait(); close(f.done) }()
	b.t.Cleanup(f.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if Listening(f.Local) {
			return f, false
		}
		select {
		case <-f.done:
			if strings.Contains(f.stderr.String(), "Address already in use") {
				return nil, true
			}
			b.t.Fatalf("ssh -L exited: %s", f.stderr.String())
		case <-time.After(30 * time.Millisecond):
		}
	}
	b.t.Fatalf("ssh -L did not listen on %s: %s", f.Local, f.stderr.String())
	return nil, false
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

// Listening says whether something listens on the TCP address addr
// (127.0.0.1:PORT), read from /proc/net/tcp. Probing by binding the port
// instead would, for that instant, make the listener we wait for fail
// with "Address already in use"; probing by connecting would open (and
// audit) a forward.
func Listening(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(port)
	ip := net.ParseIP(host).To4()
	if err != nil || ip == nil {
		return false
	}
	// /proc/net/tcp writes the IPv4 address as a little-endian hex word.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], p)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" { // 0A: LISTEN
			return true
		}
	}
	return false
}
