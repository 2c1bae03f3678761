package tuplecache

import (
	"context"
	"sync"
	"time"

	"github.com/sshbastion/bastion/store"
)

// Options of the cache.
type Options struct {
	// MaxEntries bounds memory: past it the cache is cleared (default 100k).
	MaxEntries int
	// MaxAge bounds how long an entry is served (default 5 s).
	MaxAge time.Duration
	Clock  store.Clock
}

// Cache wraps a store.Tuples.
type Cache struct {
	store.Tuples
	opts Options

	mu      sync.RWMutex
	entries map[key]entry
}

type key struct {
	bySubject bool
	a, b      string
}

type entry struct {
	tuples  []store.Tuple
	fetched time.Time
}

// New returns a cache over t.
func New(t store.Tuples, opts Options) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Cache{Tuples: t, opts: opts, entries: map[key]entry{}}
}

// WriteTuples writes through and clears the cache, whatever the outcome.
func (c *Cache) WriteTuples(ctx context.Context, add, del []store.Tuple) error {
	err := c.Tuples.WriteTuples(ctx, add, del)
	c.Clear()
	return err
}

// Clear drops every entry.
func (c *Cache) Clear() {
	c.mu.Lock()
	c.entries = map[key]entry{}
	c.mu.Unlock()
}

// TuplesByObject implements store.Tuples through the cache.
func (c *Cache) TuplesByObject(ctx context.Context, object, relation string) ([]store.Tuple, error) {
	return c.get(ctx, key{false, object, relation}, func() ([]store.Tuple, error) {
		return c.Tuples.TuplesByObject(ctx, object, relation)
	})
}

// TuplesBySubject implements store.Tuples through the cache.
func (c *Cache) TuplesBySubject(ctx context.Context, subject, objectType string) ([]store.Tuple, error) {
	return c.get(ctx, key{true, subject, objectType}, func() ([]store.Tuple, error) {
		return c.Tuples.TuplesBySubject(ctx, subject, objectType)
	})
}

func (c *Cache) get(_ context.Context, k key, load func() ([]store.Tuple, error)) ([]store.Tuple, error) {
	now := c.opts.Clock()
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if ok && now.Sub(e.fetched) < c.opts.MaxAge {
		return live(e.tuples, now), nil
	}
	ts, err := load()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.opts.MaxEntries {
		c.entries = map[key]entry{}
	}
	c.entries[k] = entry{tuples: ts, fetched: now}
	c.mu.Unlock()
	return live(ts, now), nil
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
