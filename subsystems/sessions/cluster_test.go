package sessions

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// events is an Auditor that keeps what it is given.
type events struct {
	mu  sync.Mutex
	evs []store.Event
}

func (e *events) Append(_ context.Context, ev store.Event) (store.Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return ev, nil
}

func (e *events) actions(action string) []store.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []store.Event
	for _, ev := range e.evs {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// sharedStore is what two replicas share: the records and the feed.
type sharedStore interface {
	store.Sessions
	store.Changes
	store.Tuples
}

// replica starts a manager as one replica over st, its sweep ticking only
// once an hour, so that whatever is cut within the test was cut by the
// feed. It stops when the test ends.
func replica(t *testing.T, st sharedStore, reps Replicas, id string, g Checker, a Auditor) (*Manager, context.CancelFunc) {
	t.Helper()
	m := New(Config{TTL: time.Hour, SweepInterval: time.Hour, ReplicaID: id, Feed: st, Replicas: reps}, st, g, a, quiet)
	if err := m.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, cancel
}

type opened struct {
	l       *Live
	reasons chan string
	at      time.Time
}

func openOn(t *testing.T, m *Manager, user string) opened {
	t.Helper()
	o := opened{reasons: make(chan string, 1)}
	l, err := m.Open(context.Background(), Request{Principal: authn.Principal{User: user}, Resource: store.Resource{Name: "web-1"},
		Kind: "forward", Closer: func(r string) { o.reasons <- r }})
	if err != nil {
		t.Fatal(err)
	}
	o.l = l
	return o
}

// cutWithin waits for the session's closer and returns how long it took
// from start.
func (o opened) cutWithin(t *testing.T, start time.Time, want string, within time.Duration) time.Duration {
	t.Helper()
	select {
	case r := <-o.reasons:
		d := time.Since(start)
		if r != want {
			t.Fatalf("session cut as %q, want %q", r, want)
		}
		if d > within {
			t.Fatalf("session cut after %s, want within %s", d, within)
		}
		return d
	case <-time.After(within + 5*time.Second):
		t.Fatalf("session not cut (want %q within %s)", want, within)
	}
	return 0
}

func newShared(t *testing.T) *badger.Store {
	t.Helper()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Two replicas over one store (badger's feed and liveness, in one
// process): B lists, gets and kills A's session through the store, and A
// cuts it from its feed; a tuple change written by B re-checks A's
// sessions at once.
func TestKillAndPolicyChangeReachTheHolder(t *testing.T) {
	st := newShared(t)
	reps := badger.NewReplicas()
	g := &grants{ok: map[string]bool{"user:bob act resource:web-1": true}}
	a, _ := replica(t, st, reps, "a", g, nil)
	b, _ := replica(t, st, reps, "b", g, nil)

	o := openOn(t, a, "bob")
	if s := o.l.Snapshot(); s.Replica != "a" {
		t.Fatalf("session record names replica %q, want a", s.Replica)
	}
	if s, ok := b.Get(o.l.ID()); !ok || s.Replica != "a" {
		t.Fatalf("B's Get of A's session: %+v, %v", s, ok)
	}
	list, err := b.List(context.Background(), "", false)
	if err != nil || len(list) != 1 || list[0].ID != o.l.ID() || list[0].State != "open" {
		t.Fatalf("B lists %+v, %v; want A's open session", list, err)
	}
	start := time.Now()
	s, err := b.Kill(o.l.ID())
	if err != nil || s.State != "revoked" {
		t.Fatalf("B's Kill: %+v, %v", s, err)
	}
	t.Logf("kill on B cut A's session after %s", o.cutWithin(t, start, ReasonRevoked, time.Second))
	if _, err := b.Kill(o.l.ID()); err == nil {
		t.Fatal("a second kill of an ended session succeeded")
	}
	if _, ok := b.Get(o.l.ID()); ok {
		t.Fatal("B still gets the ended session")
	}

	o = openOn(t, a, "bob")
	g.set("user:bob act resource:web-1", false)
	start = time.Now()
	tu := store.Tuple{Object: "resource:web-1", Relation: "act", Subject: "user:bob"}
	if err := st.WriteTuples(context.Background(), nil, []store.Tuple{tu}); err != nil {
		t.Fatal(err)
	}
	t.Logf("a tuple change cut the session after %s", o.cutWithin(t, start, ReasonPolicy, time.Second))
}

// A session record left open by a replica that is gone (a crash, or this
// host's previous process) is ended as replica lost, and audited, when a
// replica starts; an id that is live cannot be joined again.
func TestStartEndsSessionsOfAbsentReplicas(t *testing.T) {
	st := newShared(t)
	ctx := context.Background()
	old := store.Session{ID: "s-old", User: "bob", Resource: "web-1", Kind: "shell", State: "open", Replica: "gone-1", Opened: time.Now()}
	legacy := store.Session{ID: "s-legacy", User: "eve", Resource: "db", Kind: "forward", State: "open", Opened: time.Now()}
	for _, s := range []store.Session{old, legacy} {
		if err := st.PutSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	reps := badger.NewReplicas()
	a := &events{}
	m, _ := replica(t, st, reps, "a", &grants{ok: map[string]bool{}}, a)
	if err := New(Config{ReplicaID: "a", Replicas: reps}, st, nil, nil, quiet).Join(ctx); err == nil {
		t.Fatal("a second replica joined as a live id")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(a.actions("session.lost")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("session.lost events: %+v", a.actions("session.lost"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range []string{old.ID, legacy.ID} {
		s, err := st.GetSession(ctx, id)
		if err != nil || s.State != "closed" || s.Reason != ReasonReplicaLost || s.Closed.IsZero() {
			t.Fatalf("session %s after the reap: %+v, %v", id, s, err)
		}
	}
	ev := a.actions("session.lost")[0]
	if ev.Reason != ReasonReplicaLost || ev.Details["ended_by"] != "a" || ev.Details["session"] == "" {
		t.Fatalf("session.lost event: %+v", ev)
	}
	list, err := m.List(ctx, "", true)
	if err != nil || len(list) != 2 {
		t.Fatalf("List after the reap: %+v, %v", list, err)
	}
}
