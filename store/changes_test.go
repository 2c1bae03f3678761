package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func recv(t *testing.T, ch <-chan store.Change) store.Change {
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

func TestChangeQueueDeliversInOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, ch := store.NewChangeQueue(ctx, 10)
	for i := uint64(1); i <= 5; i++ {
		q.Push(store.Change{Rev: i, Kind: store.KindUser, Key: "u"})
	}
	for i := uint64(1); i <= 5; i++ {
		if c := recv(t, ch); c.Rev != i || c.Kind != store.KindUser {
			t.Fatalf("change %d: %+v", i, c)
		}
	}
}

// A consumer that falls behind gets one reset in place of what it missed,
// then every later change; the producer never blocks.
func TestChangeQueueOverflowResets(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, ch := store.NewChangeQueue(ctx, 4)
	done := make(chan struct{})
	go func() {
		for i := uint64(1); i <= 1000; i++ {
			q.Push(store.Change{Rev: i, Kind: store.KindTuple})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Push blocked on a consumer that does not read")
	}
	// The delivery goroutine may hold one change (even a reset) while the
	// buffer overflows again: what follows a reset at R is R+1, R+2, ...
	// or a later reset, until 1000.
	var last store.Change
	resets := 0
	for last.Rev != 1000 {
		c := recv(t, ch)
		switch {
		case c.Kind == store.KindReset && c.Rev > last.Rev:
			resets++
		case c.Kind == store.KindTuple && (c.Rev == last.Rev+1 || (resets == 0 && last.Rev == 0)):
		default:
			t.Fatalf("after %+v got %+v", last, c)
		}
		last = c
	}
	if resets == 0 {
		t.Fatal("1000 changes into a buffer of 4 without a reset")
	}
	q.Push(store.Change{Rev: 1001, Kind: store.KindUser})
	if c := recv(t, ch); c.Rev != 1001 || c.Kind != store.KindUser {
		t.Fatalf("after the reset got %+v", c)
	}
}

func TestChangeQueueResetDropsBuffered(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, ch := store.NewChangeQueue(ctx, 100)
	// Let the delivery goroutine hold rev 1 while 2 and 3 wait.
	q.Push(store.Change{Rev: 1, Kind: store.KindUser})
	time.Sleep(10 * time.Millisecond)
	q.Push(store.Change{Rev: 2, Kind: store.KindUser})
	q.Push(store.Change{Rev: 3, Kind: store.KindUser})
	q.Reset(7)
	if c := recv(t, ch); c.Rev != 1 {
		t.Fatalf("first: %+v", c)
	}
	if c := recv(t, ch); c.Kind != store.KindReset || c.Rev != 7 {
		t.Fatalf("second: %+v, want the reset", c)
	}
}

func TestChangeQueueCloses(t *testing.T) {
	for _, how := range []string{"cancel", "Close"} {
		ctx, cancel := context.WithCancel(context.Background())
		q, ch := store.NewChangeQueue(ctx, 10)
		q.Push(store.Change{Rev: 1, Kind: store.KindUser})
		q.Push(store.Change{Rev: 2, Kind: store.KindUser})
		if how == "cancel" {
			cancel()
		} else {
			q.Close()
			q.Close()
		}
		deadline := time.After(5 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatalf("%s: channel still open", how)
			}
		}
		select {
		case <-q.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Done not closed", how)
		}
		q.Push(store.Change{Rev: 3}) // after the end: ignored, no panic
		cancel()
	}
}

func TestResourceLoginFor(t *testing.T) {
	if got := (store.Resource{Name: "a"}).LoginFor("bob"); got != "bob" {
		t.Errorf("a Resource naming no login: %q, want the user's own name", got)
	}
	if got := (store.Resource{Name: "b", Login: "root"}).LoginFor("bob"); got != "root" {
		t.Errorf("a Resource naming root: %q, want root", got)
	}
}
