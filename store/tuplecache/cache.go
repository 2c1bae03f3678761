package tuplecache

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sshbastion/bastion/store"
)

// Options of the cache.
type Options struct {
	// MaxEntries bounds memory: past it the cache is cleared (default 100k).
	MaxEntries int
	// MaxAge bounds how long an entry is served (default 5 s, or 10 min
	// when following a Feed): the fallback should an invalidation ever be
	// missed.
	MaxAge time.Duration
	Clock  store.Clock
	// Feed, when set, is followed: every replica's tuple writes and model
	// changes invalidate what they touch. While it is not being followed
	// (before the first Watch succeeded, after the channel closed), the
	// cache serves every read from the store. Without a Feed the cache
	// sees only the writes made through it, and MaxAge bounds how stale
	// it can be about anything else.
	Feed store.Changes
	// Logger receives the feed's losses; slog.Default if nil.
	Logger *slog.Logger
}

// Cache wraps a store.Tuples. With a Feed, Close must be called to stop
// following it.
type Cache struct {
	store.Tuples
	opts Options

	mu sync.RWMutex
	// objects: object -> relation -> entry; subjects: subject -> type ->
	// entry. An invalidation forgets a whole object and a whole subject.
	objects, subjects map[string]map[string]entry
	n                 int // entries in both
	// gen moves with every invalidation: a read that began at another
	// generation is returned but not kept.
	gen uint64
	// caching is false while a Feed is set but not followed.
	caching bool

	cancel context.CancelFunc
	done   chan struct{}
}

type entry struct {
	tuples  []store.Tuple
	fetched time.Time
}

// New returns a cache over t. With opts.Feed it starts following the feed
// at once; reads go to the store until it follows.
func New(t store.Tuples, opts Options) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	if opts.MaxAge <= 0 && opts.Feed != nil {
		// Following the feed, entries are invalidated by every replica's
		// writes, and expired tuples are filtered at each read; MaxAge is
		// only the fallback for a missed change. 5 s made every Check on
		// etcd a round trip once a working set took longer than that to
		// revisit (P3 on etcd: p99 71 ms).
		opts.MaxAge = 10 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cache{Tuples: t, opts: opts, caching: opts.Feed == nil,
		objects: map[string]map[string]entry{}, subjects: map[string]map[string]entry{}}
	if opts.Feed != nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go c.follow(ctx)
	}
	return c
}

// Close stops following the feed (nothing to do without one). The cache
// then serves every read from the store.
func (c *Cache) Close() error {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	return nil
}

// Following reports whether the cache serves from memory: always without
// a Feed; with one, only while the feed is followed.
func (c *Cache) Following() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.caching
}

// WriteTuples writes through, then forgets what the tuples touch, whatever
// the outcome: a read here after the write sees it, without waiting for
// the feed.
func (c *Cache) WriteTuples(ctx context.Context, add, del []store.Tuple) error {
	err := c.Tuples.WriteTuples(ctx, add, del)
	if len(add)+len(del) > 256 {
		c.Clear()
		return err
	}
	c.mu.Lock()
	for _, t := range add {
		c.forget(t)
	}
	for _, t := range del {
		c.forget(t)
	}
	c.gen++
	c.mu.Unlock()
	return err
}

// Clear drops every entry.
func (c *Cache) Clear() {
	c.mu.Lock()
	c.clear()
	c.mu.Unlock()
}

// clear drops every entry and moves the generation; c.mu is held.
func (c *Cache) clear() {
	c.objects, c.subjects, c.n = map[string]map[string]entry{}, map[string]map[string]entry{}, 0
	c.gen++
}

// forget drops the entries of t's object and subject; c.mu is held, and
// the caller moves the generation.
func (c *Cache) forget(t store.Tuple) {
	c.n -= len(c.objects[t.Object]) + len(c.subjects[t.Subject])
	delete(c.objects, t.Object)
	delete(c.subjects, t.Subject)
}

// TuplesByObject implements store.Tuples through the cache.
func (c *Cache) TuplesByObject(ctx context.Context, object, relation string) ([]store.Tuple, error) {
	return c.get(false, object, relation, func() ([]store.Tuple, error) {
		return c.Tuples.TuplesByObject(ctx, object, relation)
	})
}

// TuplesBySubject implements store.Tuples through the cache.
func (c *Cache) TuplesBySubject(ctx context.Context, subject, objectType string) ([]store.Tuple, error) {
	return c.get(true, subject, objectType, func() ([]store.Tuple, error) {
		return c.Tuples.TuplesBySubject(ctx, subject, objectType)
	})
}

// get serves (a, b) of the objects or the subjects from the cache, or
// loads it.
func (c *Cache) get(bySubject bool, a, b string, load func() ([]store.Tuple, error)) ([]store.Tuple, error) {
	now := c.opts.Clock()
	c.mu.RLock()
	e, ok := c.pick(bySubject)[a][b]
	gen, caching := c.gen, c.caching
	c.mu.RUnlock()
	if ok && now.Sub(e.fetched) < c.opts.MaxAge {
		return live(e.tuples, now), nil
	}
	ts, err := load()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	// Keep the result only if nothing was invalidated since the read
	// began: it may predate a write another replica made.
	if caching && c.caching && c.gen == gen {
		if c.n >= c.opts.MaxEntries {
			c.clear()
		} else {
			m := c.pick(bySubject)
			inner := m[a]
			if inner == nil {
				inner = map[string]entry{}
				m[a] = inner
			}
			if _, had := inner[b]; !had {
				c.n++
			}
			inner[b] = entry{tuples: ts, fetched: now}
		}
	}
	c.mu.Unlock()
	return live(ts, now), nil
}

func (c *Cache) pick(bySubject bool) map[string]map[string]entry {
	if bySubject {
		return c.subjects
	}
	return c.objects
}

// live filters out tuples that expired since they were cached. It copies
// only when something expired, so callers must not modify the result.
func live(ts []store.Tuple, now time.Time) []store.Tuple {
	for i, t := range ts {
		if t.Expired(now) {
			out := append([]store.Tuple(nil), ts[:i]...)
			for _, u := range ts[i+1:] {
				if !u.Expired(now) {
					out = append(out, u)
				}
			}
			return out
		}
	}
	return ts
}
