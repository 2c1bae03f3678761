package tuplecache_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/tuplecache"
)

var bg = context.Background()

// fakeFeed hands out feeds the test writes to; each closes when the test
// closes it or its context ends, like a store's.
type fakeFeed struct {
	mu      sync.Mutex
	chs     []chan store.Change
	watches atomic.Int32
	gate    chan struct{} // if set, Watch waits for it
}

func (f *fakeFeed) Rev(context.Context) (uint64, error) { return 0, nil }

func (f *fakeFeed) Watch(ctx context.Context, _ uint64) (<-chan store.Change, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	in, out := make(chan store.Change), make(chan store.Change)
	f.mu.Lock()
	f.chs = append(f.chs, in)
	f.mu.Unlock()
	f.watches.Add(1)
	go func() {
		defer close(out)
		for {
			select {
			case c, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *fakeFeed) current() chan store.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chs[len(f.chs)-1]
}

// send delivers c and then two changes the cache ignores: once the last
// is taken by the relay, the first was taken by the cache, which applies
// in order, one at a time: c has been applied.
func (f *fakeFeed) send(t *testing.T, c store.Change) {
	t.Helper()
	sync := store.Change{Kind: store.KindUser, Key: "sync"}
	for _, x := range []store.Change{c, sync, sync} {
		select {
		case f.current() <- x:
		case <-time.After(5 * time.Second):
			t.Fatal("the cache does not read its feed")
		}
	}
}

// counting counts the reads that reach the store, and can hold one read
// after it loaded, before it returns.
type counting struct {
	store.Tuples
	reads  atomic.Int32
	hold   chan chan struct{} // a read sends a channel here and waits on it
	holdOn atomic.Bool
}

func (c *counting) TuplesByObject(ctx context.Context, o, r string) ([]store.Tuple, error) {
	c.reads.Add(1)
	ts, err := c.Tuples.TuplesByObject(ctx, o, r)
	if c.holdOn.CompareAndSwap(true, false) {
		release := make(chan struct{})
		c.hold <- release
		<-release
	}
	return ts, err
}

func newBadger(t *testing.T) *badger.Store {
	t.Helper()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func waitFollowing(t *testing.T, c *tuplecache.Cache, want bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Following() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Following() stays %v", !want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var grant = store.Tuple{Object: "resource:web", Relation: "act", Subject: "user:bob"}

func acts(t *testing.T, c *tuplecache.Cache) int {
	t.Helper()
	ts, err := c.TuplesByObject(bg, "resource:web", "act")
	if err != nil {
		t.Fatal(err)
	}
	return len(ts)
}

// A read that began before an invalidation arrived is returned, but not
// kept: the next read goes to the store and no longer sees the grant.
func TestReadRacingAnInvalidationIsNotKept(t *testing.T) {
	st := newBadger(t)
	if err := st.WriteTuples(bg, []store.Tuple{grant}, nil); err != nil {
		t.Fatal(err)
	}
	feed := &fakeFeed{}
	src := &counting{Tuples: st, hold: make(chan chan struct{})}
	c := tuplecache.New(src, tuplecache.Options{Feed: feed, MaxAge: time.Hour})
	defer c.Close()
	waitFollowing(t, c, true)

	src.holdOn.Store(true)
	got := make(chan int)
	go func() { got <- acts(t, c) }()
	release := <-src.hold // the read loaded the grant and waits
	// Another replica removes the grant; its change arrives.
	if err := st.WriteTuples(bg, nil, []store.Tuple{grant}); err != nil {
		t.Fatal(err)
	}
	feed.send(t, store.Change{Kind: store.KindTuple, Key: grant.String(), Deleted: true, Tuple: &grant})
	close(release)
	if n := <-got; n != 1 {
		t.Fatalf("the racing read returned %d tuples, want the 1 it loaded", n)
	}
	if n := acts(t, c); n != 0 {
		t.Fatal("a grant removed on another replica is served from the cache")
	}
}

// Tuple changes forget only their object and subject; model changes and
// resets forget everything; a closed feed turns caching off until the
// cache watches again.
func TestFeedInvalidatesAndClosesSafely(t *testing.T) {
	st := newBadger(t)
	other := store.Tuple{Object: "resource:db", Relation: "act", Subject: "user:eve"}
	if err := st.WriteTuples(bg, []store.Tuple{grant, other}, nil); err != nil {
		t.Fatal(err)
	}
	feed := &fakeFeed{}
	src := &counting{Tuples: st}
	c := tuplecache.New(src, tuplecache.Options{Feed: feed, MaxAge: time.Hour})
	defer c.Close()
	waitFollowing(t, c, true)
	warm := func() {
		acts(t, c)
		if _, err := c.TuplesByObject(bg, "resource:db", "act"); err != nil {
			t.Fatal(err)
		}
	}
	reads := func(f func()) int32 {
		before := src.reads.Load()
		f()
		return src.reads.Load() - before
	}
	warm()
	if n := reads(warm); n != 0 {
		t.Fatalf("a warm cache read the store %d times", n)
	}
	feed.send(t, store.Change{Kind: store.KindTuple, Key: grant.String(), Tuple: &grant})
	if n := reads(warm); n != 1 {
		t.Fatalf("after a change of resource:web, %d reads reached the store, want 1", n)
	}
	for _, kind := range []string{store.KindModel, store.KindReset} {
		feed.send(t, store.Change{Kind: kind})
		if n := reads(warm); n != 2 {
			t.Fatalf("after a %s change, %d reads reached the store, want 2", kind, n)
		}
	}
	feed.send(t, store.Change{Kind: store.KindResource, Key: "web"})
	if n := reads(warm); n != 0 {
		t.Fatalf("a resource change invalidated tuples (%d reads)", n)
	}

	gate := make(chan struct{})
	feed.mu.Lock()
	feed.gate = gate
	feed.mu.Unlock()
	close(feed.current())
	// Until the cache watches again, nothing is served from memory.
	waitFollowing(t, c, false)
	warm()
	if n := reads(warm); n != 2 {
		t.Fatalf("with its feed closed the cache served %d of 2 reads from memory", 2-n)
	}
	close(gate)
	waitFollowing(t, c, true)
	warm()
	if n := reads(warm); n != 0 {
		t.Fatalf("after watching again the cache does not cache (%d reads)", n)
	}
	c.Close()
	if c.Following() {
		t.Fatal("a closed cache still serves from memory")
	}
}

// The real feed of badger: a write that bypasses the cache (as another
// replica's would) stops granting through it within a second.
func TestBadgerFeedInvalidatesWritesMadeElsewhere(t *testing.T) {
	st := newBadger(t)
	c := tuplecache.New(st, tuplecache.Options{Feed: st, MaxAge: time.Hour})
	defer c.Close()
	waitFollowing(t, c, true)
	expectActs(t, c, 0)
	if err := st.WriteTuples(bg, []store.Tuple{grant}, nil); err != nil {
		t.Fatal(err)
	}
	expectActs(t, c, 1)
	if err := st.WriteTuples(bg, nil, []store.Tuple{grant}); err != nil {
		t.Fatal(err)
	}
	expectActs(t, c, 0)
}

// expectActs waits up to a second for the cache to answer n grants.
func expectActs(t *testing.T, c *tuplecache.Cache, n int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if acts(t, c) == n {
			return time.Since(start)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the cache still does not answer %d grants after 1 s", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
