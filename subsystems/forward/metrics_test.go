package forward

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeChannel is the client's side of a forward: it sends in, then EOF,
// and keeps what the target sent back.
type fakeChannel struct {
	in  io.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *fakeChannel) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *fakeChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *fakeChannel) Close() error                                   { return nil }
func (c *fakeChannel) CloseWrite() error                              { return nil }
func (c *fakeChannel) SendRequest(string, bool, []byte) (bool, error) { return false, nil }
func (c *fakeChannel) Stderr() io.ReadWriter                          { return &bytes.Buffer{} }

// TestMetricsCountBytesByDirection: a forward to a target that answers
// twice what it got counts each direction on its own, in the session's
// counters and in the metrics, and the open gauge returns to 0.
func TestMetricsCountBytesByDirection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		got, _ := io.ReadAll(c)
		_, _ = c.Write(append(got, got...))
		c.Close()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789"), 10000) // 100 kB
	ch := &fakeChannel{in: bytes.NewReader(payload)}

	m := NewMetrics()
	var in, out int
	done := m.open()
	if got := testutil.ToFloat64(m.active); got != 1 {
		t.Fatalf("active forwards %v, want 1", got)
	}
	up, down := m.counters(func(n int) { in += n }, func(n int) { out += n })
	pump(ch, conn, up, down)
	done()

	if in != len(payload) || out != 2*len(payload) || ch.out.Len() != 2*len(payload) {
		t.Fatalf("session counted %d in, %d out; channel got %d; want %d and %d", in, out, ch.out.Len(), len(payload), 2*len(payload))
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues(ClientToTarget)); got != float64(len(payload)) {
		t.Errorf("client_to_target bytes %v, want %d", got, len(payload))
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues(TargetToClient)); got != float64(2*len(payload)) {
		t.Errorf("target_to_client bytes %v, want %d", got, 2*len(payload))
	}
	if got := testutil.ToFloat64(m.active); got != 0 {
		t.Errorf("active forwards %v after the end, want 0", got)
	}
	if got := testutil.ToFloat64(m.opens.WithLabelValues("opened")); got != 1 {
		t.Errorf("opened forwards %v, want 1", got)
	}
}

// TestNilMetrics: without metrics the session's counters are used as
// they are, and nothing panics.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	n := 0
	up, _ := m.counters(func(k int) { n += k }, func(int) {})
	up(5)
	m.open()()
	m.result("refused")
	if n != 5 || m.Collectors() != nil {
		t.Fatalf("nil metrics: counted %d, collectors %v", n, m.Collectors())
	}
}
