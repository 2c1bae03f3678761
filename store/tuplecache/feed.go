package tuplecache

import (
	"context"

	"github.com/sshbastion/bastion/store"
)

// follow watches the feed until ctx ends, as store.Changes asks of a
// consumer: the cache caches only while a watch is open, starting empty
// once it is (so that nothing cached predates the revision watched from),
// and stops caching, empty again, when the channel closes under it, until
// a new watch is open.
func (c *Cache) follow(ctx context.Context) {
	defer close(c.done)
	store.Follow(ctx, c.opts.Feed, store.Follower{
		Opened: func(context.Context) { c.setCaching(true) },
		Change: func(_ context.Context, ch store.Change) { c.apply(ch) },
		Closed: func() {
			c.setCaching(false)
			c.opts.Logger.Warn("tuple cache: the change feed ended; reads go to the store until it is back")
		},
		Failed: func(err error) {
			c.opts.Logger.Warn("tuple cache: cannot follow the store's changes; reads go to the store", "err", err)
		},
	})
	c.setCaching(false)
}

// setCaching turns caching on or off, empty either way.
func (c *Cache) setCaching(on bool) {
	c.mu.Lock()
	c.caching = on
	c.clear()
	c.mu.Unlock()
}

// apply invalidates what one change touches: a tuple's object and subject;
// everything on a model change (relations may mean something else now) or
// a reset (changes were lost).
func (c *Cache) apply(ch store.Change) {
	switch ch.Kind {
	case store.KindTuple:
		c.mu.Lock()
		if ch.Tuple != nil {
			c.forget(*ch.Tuple)
			c.gen++
		} else {
			c.clear()
		}
		c.mu.Unlock()
	case store.KindModel, store.KindReset:
		c.Clear()
	}
}
