package tuplecache_test

import (
	"context"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/storetest"
	"github.com/sshbastion/bastion/store/tuplecache"
)

// cached is a full store whose tuple reads go through the cache.
type cached struct {
	store.Store
	c *tuplecache.Cache
}

func (s cached) WriteTuples(ctx context.Context, add, del []store.Tuple) error {
	return s.c.WriteTuples(ctx, add, del)
}
func (s cached) TuplesByObject(ctx context.Context, o, r string) ([]store.Tuple, error) {
	return s.c.TuplesByObject(ctx, o, r)
}
func (s cached) TuplesBySubject(ctx context.Context, sub, t string) ([]store.Tuple, error) {
	return s.c.TuplesBySubject(ctx, sub, t)
}

// The cache must not change any behaviour of the store it fronts: the
// whole backend suite runs through it, expiry tests included.
func TestStoreSuiteThroughCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		st, err := badger.Open("", badger.Options{InMemory: true, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return cached{Store: st, c: tuplecache.New(st, tuplecache.Options{Clock: clock, MaxAge: time.Hour})}
	})
}

// The same, with the cache following the store's feed.
func TestStoreSuiteThroughFollowingCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		st, err := badger.Open("", badger.Options{InMemory: true, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		c := tuplecache.New(st, tuplecache.Options{Clock: clock, MaxAge: time.Hour, Feed: st})
		t.Cleanup(func() { c.Close() })
		return cached{Store: st, c: c}
	})
}

func TestCachedTupleExpiresAndWritesInvalidate(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	st, err := badger.Open("", badger.Options{InMemory: true, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := tuplecache.New(st, tuplecache.Options{Clock: clock.Now, MaxAge: time.Hour})
	tp := store.Tuple{Object: "resource:a", Relation: "act", Subject: "user:bob", Expires: storetest.Epoch.Add(time.Second)}
	if err := c.WriteTuples(ctx, []store.Tuple{tp}, nil); err != nil {
		t.Fatal(err)
	}
	if ts, _ := c.TuplesByObject(ctx, "resource:a", "act"); len(ts) != 1 {
		t.Fatalf("fresh tuple not read: %v", ts)
	}
	clock.Advance(2 * time.Second)
	if ts, _ := c.TuplesByObject(ctx, "resource:a", "act"); len(ts) != 0 {
		t.Fatalf("expired tuple served from cache: %v", ts)
	}
	tp.Expires = time.Time{}
	if err := c.WriteTuples(ctx, []store.Tuple{tp}, nil); err != nil {
		t.Fatal(err)
	}
	if ts, _ := c.TuplesBySubject(ctx, "user:bob", "resource"); len(ts) != 1 {
		t.Fatalf("write not visible: %v", ts)
	}
	if err := c.WriteTuples(ctx, nil, []store.Tuple{tp}); err != nil {
		t.Fatal(err)
	}
	if ts, _ := c.TuplesBySubject(ctx, "user:bob", "resource"); len(ts) != 0 {
		t.Fatalf("delete not visible: %v", ts)
	}
}
