package hostshell

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/tui"
)

// settle is when a policy change is reported a second time: the tuple
// cache and the model follow the same feed on watches of their own, whose
// deliveries may come a moment after this one's, and a TUI that loaded
// in between would show the grant a change too late.
const settle = 300 * time.Millisecond

// watchers fans the feed out to the open TUIs: one store.Follow per
// process, running while at least one TUI is open, whatever the number of
// sessions. A TUI never slows the feed down: each has a 1-slot channel
// whose waiting value takes in the next changes.
type watchers struct {
	feed store.Changes
	log  *slog.Logger

	mu     sync.Mutex
	subs   map[chan tui.What]struct{}
	cancel context.CancelFunc // ends the running Follow; nil when none runs

	settling atomic.Bool
}

// subscribe returns a channel of what may have changed, closed when ctx
// ends.
func (w *watchers) subscribe(ctx context.Context) <-chan tui.What {
	ch := make(chan tui.What, 1)
	w.mu.Lock()
	if w.subs == nil {
		w.subs = map[chan tui.What]struct{}{}
	}
	w.subs[ch] = struct{}{}
	if w.cancel == nil {
		fctx, cancel := context.WithCancel(context.Background())
		w.cancel = cancel
		go w.follow(fctx)
	}
	w.mu.Unlock()
	context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.subs, ch)
		close(ch) // under mu: broadcast never sends on it after this
		if len(w.subs) == 0 && w.cancel != nil {
			w.cancel()
			w.cancel = nil
		}
	})
	return ch
}

// follow runs the feed until ctx ends. A TUI loads everything again when
// a watch opens (changes may have been missed while none was), when it
// ends and when it cannot open: while the store is out of reach, that is
// a reload at Follow's back-off, as polling would do.
func (w *watchers) follow(ctx context.Context) {
	store.Follow(ctx, w.feed, store.Follower{
		Opened: func(context.Context) { w.broadcast(tui.ChangedAll) },
		Change: func(_ context.Context, c store.Change) {
			what := whatOf(c)
			if what == 0 {
				return
			}
			w.broadcast(what)
			if what&tui.ChangedResources != 0 && w.settling.CompareAndSwap(false, true) {
				time.AfterFunc(settle, func() {
					w.settling.Store(false)
					w.broadcast(tui.ChangedResources | tui.ChangedRequests)
				})
			}
		},
		Closed: func() {
			w.log.Warn("tui: the change feed ended; watching again")
			w.broadcast(tui.ChangedAll)
		},
		Failed: func(err error) {
			w.log.Warn("tui: cannot follow the store's changes", "err", err)
			w.broadcast(tui.ChangedAll)
		},
	})
}

// whatOf is what a change may alter in a TUI. Tuples decide what is
// reachable (an approval writes one) and which requests one may review;
// a Resource or the model changes the list and the reviewers.
func whatOf(c store.Change) tui.What {
	switch c.Kind {
	case store.KindTuple, store.KindModel, store.KindResource:
		return tui.ChangedResources | tui.ChangedRequests
	case store.KindRequest:
		return tui.ChangedRequests
	case store.KindSession:
		return tui.ChangedSessions
	case store.KindReset:
		return tui.ChangedAll
	}
	return 0
}

// broadcast offers what to every TUI without ever waiting on one.
func (w *watchers) broadcast(what tui.What) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		offer(ch, what)
	}
}

// offer puts what in ch's one slot, ORed with a value waiting there
// unread. It never blocks: broadcast (under mu) is the only sender, so
// after taking a waiting value out the slot is free, or the reader took
// it first and it is free all the same.
func offer(ch chan tui.What, what tui.What) {
	for {
		select {
		case ch <- what:
			return
		default:
		}
		select {
		case old := <-ch:
			what |= old
		default:
		}
	}
}

var _ tui.Watcher = (*backend)(nil)

// Changes implements tui.Watcher when the module follows the store's
// feed (Config.Feed): the TUI then follows every replica's grants,
// requests and sessions; without one it is nil, and the TUI polls.
func (b *backend) Changes(ctx context.Context) <-chan tui.What {
	if b.m.cfg.Feed == nil {
		return nil
	}
	return b.m.watchers.subscribe(ctx)
}
