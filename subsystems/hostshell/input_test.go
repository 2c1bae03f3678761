package hostshell

import (
	"io"
	"testing"
	"time"
)

// Input typed after one holder released must reach the next holder, not
// vanish into the first one's pending read.
func TestInputMuxHandsOverWithoutLosingKeys(t *testing.T) {
	pr, pw := io.Pipe()
	m := newInputMux(pr)
	first := m.take()
	go func() { _, _ = pw.Write([]byte("ab")) }()
	buf := make([]byte, 8)
	n, err := first.Read(buf)
	if err != nil || string(buf[:n]) != "ab" {
		t.Fatalf("first got %q %v", buf[:n], err)
	}
	// The first holder has a read pending when it is released.
	pending := make(chan error, 1)
	go func() { _, err := first.Read(buf); pending <- err }()
	time.Sleep(20 * time.Millisecond)
	m.release(first)
	if err := <-pending; err != io.EOF {
		t.Fatalf("released reader got %v, want EOF", err)
	}
	second := m.take()
	go func() { _, _ = pw.Write([]byte("cd")) }()
	got := make([]byte, 8)
	n, err = second.Read(got)
	if err != nil || string(got[:n]) != "cd" {
		t.Fatalf("second got %q %v", got[:n], err)
	}
	pw.Close()
	if _, err := second.Read(got); err != io.EOF {
		t.Fatalf("after the source closed: %v", err)
	}
}
