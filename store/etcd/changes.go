package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// The change feed is an etcd watch on the records under the prefix (every
// key before the bulk keys, see pBulk), from the revision
// after from, in a loop: when the watch ends (the member lost its leader,
// the connection broke for good), it is opened again from the revision
// after the last one it delivered, so nothing is missed; when that
// revision was compacted away, the consumer gets a reset, and the watch
// continues from the current revision. Each watch event becomes at most
// one Change (see changeOf); Rev is etcd's revision, shared by every
// change of one transaction and the same on every replica.

// Watch implements store.Changes.
func (s *Store) Watch(ctx context.Context, from uint64) (<-chan store.Change, error) {
	if s.ctx.Err() != nil {
		return nil, errors.New("etcd: store is closed")
	}
	cur, err := s.Rev(ctx)
	if err != nil {
		return nil, err
	}
	if from > cur {
		return nil, fmt.Errorf("etcd: watch from revision %d, past the current %d", from, cur)
	}
	// The feed ends with ctx or with Close.
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	q, ch := store.NewChangeQueue(wctx, s.buffer)
	go func() {
		defer stop()
		defer cancel()
		s.watchLoop(wctx, q, int64(from)+1)
	}()
	return ch, nil
}

// watchLoop feeds q from etcd watches starting at next, until ctx is done.
func (s *Store) watchLoop(ctx context.Context, q *store.ChangeQueue, next int64) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		delivered := false
		// WithRequireLeader: a member cut off from its cluster ends the
		// watch instead of holding it silently; the loop then reopens it
		// (on another member, if the endpoints name several).
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		// Records only: the range ends where the bulk keys begin.
		wch := s.cli.Watch(wctx, s.prefix, clientv3.WithRange(s.k(pBulk)), clientv3.WithRev(next), clientv3.WithProgressNotify())
		for resp := range wch {
			if resp.CompactRevision != 0 {
				next = s.resetAfterCompaction(ctx, q, next, resp.CompactRevision)
				break
			}
			if err := resp.Err(); err != nil {
				s.log.Warn("store feed: etcd watch ended; reopening", "from_rev", next, "err", err)
				break
			}
			if resp.IsProgressNotify() {
				// Everything up to the header's revision was sent.
				next = max(next, resp.Header.Revision+1)
				continue
			}
			for _, ev := range resp.Events {
				if c, ok := s.changeOf(ev); ok {
					q.Push(c)
				}
				next = ev.Kv.ModRevision + 1
				delivered = true
			}
		}
		cancel()
		if delivered {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// resetAfterCompaction tells the consumer it missed changes from next on
// (etcd compacted them away) and returns where the watch continues: after
// the current revision, read before the reset is delivered, so that what
// the consumer re-reads after the reset is at least that recent.
func (s *Store) resetAfterCompaction(ctx context.Context, q *store.ChangeQueue, next, compacted int64) int64 {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cur, err := s.Rev(rctx)
		cancel()
		if err == nil {
			s.log.Warn("store feed: changes compacted away; consumers reset",
				"from_rev", next, "compacted_rev", compacted, "rev", cur)
			q.Reset(cur)
			return int64(cur) + 1
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return next
}

// changeOf maps a watch event to the Change it stands for: records map to
// their kind; index entries, events, the chain head, recordings and blob
// chunks map to none.
func (s *Store) changeOf(ev *clientv3.Event) (store.Change, bool) {
	key := string(ev.Kv.Key)
	if !strings.HasPrefix(key, s.prefix) {
		return store.Change{}, false
	}
	key = key[len(s.prefix):]
	deleted := ev.Type == mvccpb.DELETE
	// A delete's Kv carries the revision of the delete itself.
	c := store.Change{Rev: uint64(ev.Kv.ModRevision), Deleted: deleted}
	for _, m := range []struct{ prefix, kind string }{
		{pUser, store.KindUser}, {pKey, store.KindKey}, {pResource, store.KindResource},
		{pSession, store.KindSession}, {pSecret, store.KindSecret}, {pRequest, store.KindRequest},
		{pKubeToken, store.KindKubeToken},
	} {
		if strings.HasPrefix(key, m.prefix) {
			c.Kind, c.Key = m.kind, key[len(m.prefix):]
			return c, true
		}
	}
	switch {
	case strings.HasPrefix(key, pTupleObj):
		t, ok := parseTupleKey(key)
		if !ok {
			return store.Change{}, false
		}
		if !deleted {
			if err := decodeTupleValue(ev.Kv.Value, &t); err != nil {
				return store.Change{}, false
			}
		}
		c.Kind, c.Key, c.Tuple = store.KindTuple, t.String(), &t
		return c, true
	case strings.HasPrefix(key, pCert):
		n, err := strconv.ParseUint(key[len(pCert):], 10, 64)
		if err != nil {
			return store.Change{}, false
		}
		c.Kind, c.Key = store.KindCert, strconv.FormatUint(n, 10)
		return c, true
	case strings.HasPrefix(key, pModel):
		n, err := strconv.ParseUint(key[len(pModel):], 10, 64)
		if err != nil {
			return store.Change{}, false
		}
		c.Kind, c.Key = store.KindModel, strconv.FormatUint(n, 10)
		return c, true
	}
	return store.Change{}, false
}
