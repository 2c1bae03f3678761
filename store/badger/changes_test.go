package badger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func recvChange(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("feed closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change within 5s")
	}
	return store.Change{}
}

// A watch from before what the ring still holds starts with a reset, then
// carries on with new changes; one within the ring replays.
func TestWatchOlderThanTheRingResets(t *testing.T) {
	s := quietStore(t, "")
	s.changes = newChangeHub(8, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 20; i++ {
		if err := s.PutUser(ctx, store.User{Name: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := s.Watch(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if c := recvChange(t, ch); c.Kind != store.KindReset || c.Rev != 20 {
		t.Fatalf("watch from rev 5 with a ring of 8 after 20 writes: %+v, want a reset at 20", c)
	}
	if err := s.PutUser(ctx, store.User{Name: "next"}); err != nil {
		t.Fatal(err)
	}
	if c := recvChange(t, ch); c.Key != "next" || c.Rev != 21 {
		t.Fatalf("after the reset: %+v", c)
	}
	ch, err = s.Watch(ctx, 15)
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(16); want <= 21; want++ {
		if c := recvChange(t, ch); c.Kind != store.KindUser || c.Rev != want {
			t.Fatalf("replay from 15: %+v, want user at rev %d", c, want)
		}
	}
}

// A watcher that does not read loses its buffer for one reset; writers
// never wait for it, and a reading watcher beside it misses nothing.
func TestSlowWatcherIsResetNotWaitedFor(t *testing.T) {
	s := quietStore(t, "")
	s.changes = newChangeHub(1024, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := s.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := s.PutSession(ctx, store.Session{ID: fmt.Sprintf("s%d", i)}); err != nil {
			t.Fatal(err)
		}
		if c := recvChange(t, fast); c.Kind != store.KindSession || c.Rev != uint64(i+1) {
			t.Fatalf("the reading watcher got %+v, want session at rev %d", c, i+1)
		}
	}
	// Before its first reset it may get what its delivery goroutine held;
	// after a reset at R come R+1, R+2, ... or a later reset, up to 100.
	var last store.Change
	resets := 0
	for last.Rev != 100 {
		c := recvChange(t, slow)
		switch {
		case c.Kind == store.KindReset && c.Rev > last.Rev:
			resets++
		case c.Kind == store.KindSession && (resets == 0 || c.Rev == last.Rev+1):
		default:
			t.Fatalf("slow watcher: after %+v got %+v", last, c)
		}
		last = c
	}
	if resets == 0 {
		t.Fatal("100 changes into a buffer of 8 without a reset")
	}
}

func TestCloseEndsWatches(t *testing.T) {
	s := quietStore(t, "")
	ch, err := s.Watch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a change after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("feed still open after Close")
	}
	if _, err := s.Watch(context.Background(), 0); err == nil {
		t.Fatal("Watch on a closed store: no error")
	}
}
