package etcd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
)

func recv(t *testing.T, ch <-chan store.Change, what string) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("%s: feed closed", what)
		}
		return c
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no change within 20s", what)
	}
	return store.Change{}
}

func watchFrom(t *testing.T, s *etcd.Store, from uint64) <-chan store.Change {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ch, err := s.Watch(wctx, from)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func currentRev(t *testing.T, s *etcd.Store) uint64 {
	t.Helper()
	r, err := s.Rev(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// putUser writes a user, retrying while etcd comes back.
func putUser(t *testing.T, s *etcd.Store, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.PutUser(wctx, store.User{Name: name})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PutUser(%s): %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectUsers reads changes until it has seen users want, in order; a
// reset or any other change fails the test.
func expectUsers(t *testing.T, ch <-chan store.Change, want ...string) {
	t.Helper()
	for _, w := range want {
		c := recv(t, ch, "user "+w)
		if c.Kind != store.KindUser || c.Key != w {
			t.Fatalf("got %+v, want the change of user %s", c, w)
		}
	}
}

// TestWatchResumesAfterEtcdRestart kills etcd (SIGKILL) under a running
// watcher, starts it again on the same data, writes through another
// client as soon as it answers (before the watcher's client has
// reconnected), and proves the watcher delivers every change, in order,
// without a reset.
func TestWatchResumesAfterEtcdRestart(t *testing.T) {
	p := startEtcd(t)
	a := open(t, p, "/restart/", nil)
	ch := watchFrom(t, a, currentRev(t, a))
	for i := 0; i < 3; i++ {
		putUser(t, a, fmt.Sprintf("before%d", i))
	}
	expectUsers(t, ch, "before0", "before1", "before2")
	// Written, not yet read: must still come after the restart.
	putUser(t, a, "unread")

	for round := 0; round < 2; round++ {
		p.Kill(t)
		time.Sleep(300 * time.Millisecond) // the watcher sees its stream die
		p.Start(t)
		b := open(t, p, "/restart/", nil)
		var names []string
		for i := 0; i < 5; i++ {
			n := fmt.Sprintf("after%d-%d", round, i)
			putUser(t, b, n)
			names = append(names, n)
		}
		if round == 0 {
			names = append([]string{"unread"}, names...)
		}
		expectUsers(t, ch, names...)
	}
}

// TestWatchFromCompactedRevisionResets: history compacted away cannot be
// replayed, so the feed starts with a reset, then carries on.
func TestWatchFromCompactedRevisionResets(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "", nil)
	old := currentRev(t, s)
	for i := 0; i < 5; i++ {
		putUser(t, s, fmt.Sprintf("u%d", i))
	}
	cur := currentRev(t, s)
	if _, err := s.Client().Compact(ctx, int64(cur)); err != nil {
		t.Fatal(err)
	}
	ch := watchFrom(t, s, old)
	c := recv(t, ch, "first change after compaction")
	if c.Kind != store.KindReset || c.Rev < cur {
		t.Fatalf("watch from compacted rev %d: first change %+v, want a reset at or after %d", old, c, cur)
	}
	putUser(t, s, "next")
	expectUsers(t, ch, "next")
}

// TestSlowWatcherResets: a watcher that does not read gets one reset for
// what overflowed its buffer, then the changes after it; writers do not
// wait for it.
func TestSlowWatcherResets(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "", func(o *etcd.Options) { o.WatchBuffer = 4 })
	ch := watchFrom(t, s, currentRev(t, s))
	start := time.Now()
	for i := 0; i < 40; i++ {
		if err := s.PutSession(ctx, store.Session{ID: fmt.Sprintf("s%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("40 writes took %s beside a watcher that does not read", d)
	}
	time.Sleep(500 * time.Millisecond) // let every event reach the queue
	var resetAt uint64
	last := ""
	for last != "s39" {
		c := recv(t, ch, "slow watcher")
		switch {
		case c.Kind == store.KindReset:
			resetAt = c.Rev
		case c.Kind == store.KindSession:
			last = c.Key
		default:
			t.Fatalf("unexpected change %+v", c)
		}
	}
	if resetAt == 0 {
		t.Fatal("40 changes into a buffer of 4 without a reset")
	}
}

// TestReplicasSeeEachOther: two stores (two replicas' clients) on one
// prefix; a write through either is seen by the other's watcher, of every
// kind the feed carries.
func TestReplicasSeeEachOther(t *testing.T) {
	p := startEtcd(t)
	a := open(t, p, "/shared/", nil)
	b := open(t, p, "/shared/", nil)
	other := open(t, p, "/other/", nil)
	chB := watchFrom(t, b, currentRev(t, b))
	if err := other.PutUser(ctx, store.User{Name: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	tu := store.Tuple{Object: "resource:web", Relation: "act", Subject: "user:alice"}
	if err := a.WriteTuples(ctx, []store.Tuple{tu}, nil); err != nil {
		t.Fatal(err)
	}
	c := recv(t, chB, "tuple written on A")
	if c.Kind != store.KindTuple || c.Tuple == nil || c.Tuple.String() != tu.String() {
		t.Fatalf("B saw %+v, want the tuple (and nothing from another prefix)", c)
	}
	if ts, err := b.TuplesByObject(ctx, "resource:web", ""); err != nil || len(ts) != 1 {
		t.Fatalf("B reads %v, %v when the change arrives", ts, err)
	}
	if err := a.PutSession(ctx, store.Session{ID: "s1", State: "revoked"}); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, chB, "session on A"); c.Kind != store.KindSession || c.Key != "s1" {
		t.Fatalf("B saw %+v", c)
	}
	if err := a.WriteTuples(ctx, nil, []store.Tuple{tu}); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, chB, "tuple removed on A"); c.Kind != store.KindTuple || !c.Deleted {
		t.Fatalf("B saw %+v", c)
	}
}
