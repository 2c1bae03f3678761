package badger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sshbastion/bastion/store"
)

// The change feed (store.Changes), in process: every write path calls
// publish after its transaction committed, which gives the write the next
// revision and hands its changes to every watcher's store.ChangeQueue and
// to a ring of the most recent ones, from which Watch replays. Revisions
// count from 0 at Open: they only order this process's feed.
const (
	defaultChangeRing = 1 << 14 // changes kept for replay
)

// changeHub fans committed changes out to the watchers.
type changeHub struct {
	mu       sync.Mutex
	rev      uint64
	ring     []store.Change // circular, len == capacity once full
	next     int            // where the next change goes once full
	floor    uint64         // every change with Rev > floor is in the ring
	watchers map[*store.ChangeQueue]struct{}
	buffer   int // each watcher's buffer
	closed   bool
}

func newChangeHub(ring, buffer int) *changeHub {
	return &changeHub{ring: make([]store.Change, 0, ring), buffer: buffer,
		watchers: map[*store.ChangeQueue]struct{}{}}
}

// publish gives cs (the changes of one committed write) the next revision
// and delivers them. It never blocks on a watcher.
func (h *changeHub) publish(cs ...store.Change) {
	if len(cs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev++
	for _, c := range cs {
		c.Rev = h.rev
		if len(h.ring) < cap(h.ring) {
			h.ring = append(h.ring, c)
		} else {
			// The oldest is overwritten: its revision is no longer
			// wholly replayable.
			h.floor = h.ring[h.next].Rev
			h.ring[h.next] = c
			h.next = (h.next + 1) % len(h.ring)
		}
		for q := range h.watchers {
			q.Push(c)
		}
	}
}

var errClosed = errors.New("badger: store is closed")

// Watch implements store.Changes.
func (s *Store) Watch(ctx context.Context, from uint64) (<-chan store.Change, error) {
	h := s.changes
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	if from > h.rev {
		return nil, fmt.Errorf("badger: watch from revision %d, past the current %d", from, h.rev)
	}
	q, ch := store.NewChangeQueue(ctx, h.buffer)
	if from < h.floor {
		// Some changes after from are gone: the consumer starts over.
		q.Reset(h.rev)
	} else {
		n := len(h.ring)
		for i := 0; i < n; i++ {
			c := h.ring[(h.next+i)%n]
			if c.Rev > from {
				q.Push(c)
			}
		}
	}
	h.watchers[q] = struct{}{}
	go func() {
		<-q.Done()
		h.mu.Lock()
		delete(h.watchers, q)
		h.mu.Unlock()
	}()
	return ch, nil
}

// Rev implements store.Changes.
func (s *Store) Rev(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.changes.mu.Lock()
	defer s.changes.mu.Unlock()
	return s.changes.rev, nil
}

// close ends every feed.
func (h *changeHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for q := range h.watchers {
		q.Close()
	}
}

// published publishes c if the write that returned err committed, and
// returns err.
func (s *Store) published(c store.Change, err error) error {
	if err == nil {
		s.changes.publish(c)
	}
	return err
}

// Constructors of the changes the write paths publish.

func recordChange(kind, key string, deleted bool) store.Change {
	return store.Change{Kind: kind, Key: key, Deleted: deleted}
}

func tupleChange(t store.Tuple, deleted bool) store.Change {
	if deleted {
		t.Expires = time.Time{}
	}
	return store.Change{Kind: store.KindTuple, Key: t.String(), Deleted: deleted, Tuple: &t}
}

func tupleChanges(add, del []store.Tuple) []store.Change {
	added := make(map[string]bool, len(add))
	for _, t := range add {
		added[t.String()] = true
	}
	out := make([]store.Change, 0, len(add)+len(del))
	seen := make(map[string]bool, len(del))
	for _, t := range del {
		// A tuple also added ends present: only its add is a change,
		// as on backends that apply a call's net effect.
		if k := t.String(); !added[k] && !seen[k] {
			seen[k] = true
			out = append(out, tupleChange(t, true))
		}
	}
	last := make(map[string]int, len(add))
	for i, t := range add {
		last[t.String()] = i
	}
	for i, t := range add {
		if last[t.String()] == i { // the last add of a tuple wins
			out = append(out, tupleChange(t, false))
		}
	}
	return out
}

func serialKey(n uint64) string { return strconv.FormatUint(n, 10) }
