package requests

import (
	"context"

	"github.com/sshbastion/bastion/store"
)

// changed wakes the waiters of id ("" for every request).
func (s *Service) changed(id string) {
	if id != "" {
		s.notify(id)
	} else {
		s.mu.Lock()
		ids := make([]string, 0, len(s.waiters))
		for id := range s.waiters {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		for _, id := range ids {
			s.notify(id)
		}
	}
}

// follow applies the feed until ctx ends, watching again whenever the
// channel closes under it. While no watch is open, Wait polls; when one
// opens, everyone is woken, since changes may have been missed.
func (s *Service) follow(ctx context.Context) {
	store.Follow(ctx, s.cfg.Feed, store.Follower{
		Opened: func(context.Context) {
			s.following.Store(true)
			s.changed("")
		},
		Change: func(_ context.Context, c store.Change) {
			switch c.Kind {
			case store.KindRequest:
				s.changed(c.Key)
			case store.KindReset:
				s.changed("")
			}
		},
		Closed: func() {
			s.following.Store(false)
			// Waiters go back to polling until a watch is open again.
			s.changed("")
			s.log.Warn("requests: the change feed ended; watching again")
		},
		Failed: func(err error) { s.log.Warn("requests: cannot follow the store's changes", "err", err) },
	})
	s.following.Store(false)
}
