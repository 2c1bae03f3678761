package sessions

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

type grants struct {
	mu sync.Mutex
	ok map[string]bool
}

func (g *grants) Check(_ context.Context, s, r, o string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ok[s+" "+r+" "+o], nil
}

func (g *grants) set(k string, v bool) {
	g.mu.Lock()
	g.ok[k] = v
	g.mu.Unlock()
}

func setup(t *testing.T) (*Manager, *grants, *atomic.Int64) {
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &grants{ok: map[string]bool{"user:bob act resource:web-1": true}}
	m := New(Config{TTL: time.Hour, MaxTTL: 2 * time.Hour, IdleTimeout: 10 * time.Minute}, st, g, nil, nil)
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	m.now = func() time.Time { return time.Unix(0, now.Load()) }
	return m, g, &now
}

func open(t *testing.T, m *Manager, r store.Resource, reasons chan string) *Live {
	l, err := m.Open(context.Background(), Request{Principal: authn.Principal{User: "bob"}, Resource: r, Kind: "forward",
		Closer: func(reason string) { reasons <- reason }})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSweepEndsSessionsForEachReason(t *testing.T) {
	ctx := context.Background()
	m, g, now := setup(t)
	reasons := make(chan string, 10)
	web := store.Resource{Name: "web-1"}

	l := open(t, m, web, reasons)
	l.lastActive.Store(now.Load())
	m.sweep(ctx)
	if len(reasons) != 0 {
		t.Fatalf("a healthy session was ended: %s", <-reasons)
	}
	now.Add(int64(11 * time.Minute)) // past idle
	m.sweep(ctx)
	if r := <-reasons; r != ReasonIdle {
		t.Fatalf("reason %q, want idle", r)
	}

	l = open(t, m, store.Resource{Name: "web-1", TTL: 5 * time.Hour}, reasons)
	if got := l.Snapshot().Expires.Sub(l.Snapshot().Opened); got != 2*time.Hour {
		t.Fatalf("TTL not capped: %s", got)
	}
	now.Add(int64(2*time.Hour + time.Second))
	m.sweep(ctx)
	if r := <-reasons; r != ReasonTTL {
		t.Fatalf("reason %q, want ttl", r)
	}

	open(t, m, web, reasons)
	g.set("user:bob act resource:web-1", false)
	m.sweep(ctx)
	if r := <-reasons; r != ReasonPolicy {
		t.Fatalf("reason %q, want policy change", r)
	}

	g.set("user:bob act resource:web-1", true)
	l = open(t, m, web, reasons)
	if _, err := m.Kill(l.ID()); err != nil {
		t.Fatal(err)
	}
	if r := <-reasons; r != ReasonRevoked {
		t.Fatalf("reason %q, want revoked", r)
	}
	if _, err := m.Kill(l.ID()); err != ErrNoSession {
		t.Fatalf("second kill: %v", err)
	}
	// Ended sessions are kept in the store with their reason.
	ss, err := m.List(ctx, "bob", true)
	if err != nil || len(ss) != 4 {
		t.Fatalf("List = %d sessions, %v", len(ss), err)
	}
	for _, s := range ss {
		if s.State == "open" || s.Reason == "" {
			t.Fatalf("ended session recorded as %+v", s)
		}
	}
}

func TestEndIsOnceAndFirstReasonWins(t *testing.T) {
	m, _, _ := setup(t)
	reasons := make(chan string, 10)
	l := open(t, m, store.Resource{Name: "web-1"}, reasons)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); m.End(l, ReasonClientClosed) }()
	}
	wg.Wait()
	if got := m.End(l, ReasonTTL); got != ReasonClientClosed {
		t.Fatalf("End returned %q", got)
	}
	if len(reasons) != 1 {
		t.Fatalf("closer called %d times", len(reasons))
	}
}

// EndConn ends the sessions of one connection only, with the reason given.
func TestEndConnEndsOnlyThatConnection(t *testing.T) {
	m, _, _ := setup(t)
	reasons := make(chan string, 10)
	web := store.Resource{Name: "web-1"}
	openOn := func(conn string) *Live {
		l, err := m.Open(context.Background(), Request{Principal: authn.Principal{User: "bob", SessionID: conn}, Resource: web, Kind: "forward",
			Closer: func(reason string) { reasons <- conn + ": " + reason }})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a1, a2, b := openOn("conn-a"), openOn("conn-a"), openOn("conn-b")
	m.EndConn("conn-a", ReasonCertExpired)
	for _, l := range []*Live{a1, a2} {
		select {
		case <-l.Done():
		default:
			t.Fatal("a session of conn-a is still live")
		}
		if s := l.Snapshot(); s.Reason != ReasonCertExpired || s.State != "closed" {
			t.Fatalf("ended as %q (%s)", s.Reason, s.State)
		}
	}
	if _, ok := m.Get(b.ID()); !ok {
		t.Fatal("conn-b's session ended too")
	}
	m.EndConn("", ReasonCertExpired) // no connection: nothing
	if _, ok := m.Get(b.ID()); !ok {
		t.Fatal("EndConn(\"\") ended a session")
	}
	for i := 0; i < 2; i++ {
		if r := <-reasons; r != "conn-a: certificate expired" {
			t.Fatalf("closer got %q", r)
		}
	}
}
