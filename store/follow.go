package store

import (
	"context"
	"time"
)

// Follower is what Follow calls back. Every field may be nil.
type Follower struct {
	// Opened runs each time a watch is open: changes may have been
	// missed while none was, so a consumer re-reads what it keeps.
	Opened func(ctx context.Context)
	// Change runs for each change, in order.
	Change func(ctx context.Context, c Change)
	// Closed runs when an open watch ended (its channel closed) while ctx
	// is still live: a consumer stops trusting what it caches.
	Closed func()
	// Failed runs when a watch could not be opened.
	Failed func(err error)
}

// Follow watches feed from its current revision until ctx ends, as the
// Changes role asks of a consumer: when a watch ends or cannot open, it
// waits (50 ms, doubling up to 2 s) and watches again from the revision
// then current, calling Opened so that the consumer re-reads.
func Follow(ctx context.Context, feed Changes, f Follower) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := watchNow(ctx, feed)
		switch {
		case err != nil:
			if ctx.Err() == nil && f.Failed != nil {
				f.Failed(err)
			}
		default:
			backoff = 50 * time.Millisecond
			if f.Opened != nil {
				f.Opened(ctx)
			}
			for c := range ch {
				if f.Change != nil {
					f.Change(ctx, c)
				}
			}
			if ctx.Err() != nil {
				return
			}
			if f.Closed != nil {
				f.Closed()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// watchNow opens a watch from the feed's current revision; reading the
// revision is bounded, the watch itself lives as long as ctx.
func watchNow(ctx context.Context, feed Changes) (<-chan Change, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rev, err := feed.Rev(rctx)
	if err != nil {
		return nil, err
	}
	return feed.Watch(ctx, rev)
}
