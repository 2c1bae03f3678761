package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// ErrHeadMoved is wrapped by AppendEvents when another writer (another
// replica) appended between this call's read of the chain head and its
// write: nothing of the failed transaction was written. The caller reads
// LastEvent again, re-chains its events after it and retries. It wraps
// store.ErrConflict, which is what package audit looks for.
var ErrHeadMoved = fmt.Errorf("etcd: the audit chain head moved (another writer appended first): %w", store.ErrConflict)

// eventKey: e/<seq, 20 decimal digits>, so key order is seq order.
func eventKey(seq uint64) string { return fmt.Sprintf("%s%020d", pEvent, seq) }

// head is the value of the chain head key: the last stored seq, and the
// hash the next event chains onto (that event's, or the checkpoint's on an
// imported log; empty in heads written before it was kept). Every append
// compares the head's mod revision with the one it read, so two writers
// cannot both append after the same event.
type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash,omitempty"`
}

// headValue encodes the head after an append or import.
func headValue(seq uint64, hash string) string {
	b, _ := json.Marshal(head{Seq: seq, Hash: hash})
	return string(b)
}

// readHead returns the last stored seq and the head key's mod revision
// (0 when no event was ever stored).
func (s *Store) readHead(ctx context.Context) (uint64, int64, error) {
	h, rev, err := s.readHeadFull(ctx)
	return h.Seq, rev, err
}

// readHeadFull returns the chain head and its key's mod revision.
func (s *Store) readHeadFull(ctx context.Context) (head, int64, error) {
	resp, err := s.cli.Get(ctx, s.k(keyHead))
	if err != nil {
		return head{}, 0, fmt.Errorf("etcd: read audit head: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return head{}, 0, nil
	}
	var h head
	if err := json.Unmarshal(resp.Kvs[0].Value, &h); err != nil {
		return head{}, 0, fmt.Errorf("etcd: corrupt audit head: %w", err)
	}
	return h, resp.Kvs[0].ModRevision, nil
}

// AppendEvents appends events, whose seqs must continue the stored ones
// without gaps (checked for the whole call before anything is written).
// Each transaction holds at most TxnLimits events and bytes, plus the head,
// and commits only if the head is still the one read: a call within
// TxnLimits is atomic, a larger one is several transactions in order, and a
// concurrent writer makes the call fail with ErrHeadMoved, having written
// a prefix of it at most (LastEvent says which). Returned means committed
// by a quorum of etcd members.
func (s *Store) AppendEvents(ctx context.Context, events []store.Event) error {
	if len(events) == 0 {
		return nil
	}
	vals, err := encodeEvents(events)
	if err != nil {
		return err
	}
	last, rev, err := s.readHead(ctx)
	if err != nil {
		return err
	}
	if first := events[0].Seq; first != last+1 {
		if first > 0 && first <= last {
			// Another writer appended since the caller's LastEvent.
			return fmt.Errorf("etcd: audit seq gap: seq %d is already stored (next is %d): %w", first, last+1, store.ErrConflict)
		}
		return fmt.Errorf("etcd: audit seq gap: first event has seq %d, want %d", first, last+1)
	}
	return s.putEvents(ctx, events, vals, rev)
}

// encodeEvents checks that events' seqs follow each other and encodes
// each, refusing one that no transaction could hold.
func encodeEvents(events []store.Event) ([]string, error) {
	vals := make([]string, len(events))
	for i, e := range events {
		if i > 0 && e.Seq != events[0].Seq+uint64(i) {
			return nil, fmt.Errorf("etcd: audit seq gap: event %d has seq %d, want %d", i, e.Seq, events[0].Seq+uint64(i))
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("etcd: encode event %d: %w", e.Seq, err)
		}
		if len(b) > txnBytes {
			return nil, fmt.Errorf("etcd: event %d encodes to %d bytes, more than one transaction holds (%d): %w",
				e.Seq, len(b), txnBytes, store.ErrTxnTooBig)
		}
		vals[i] = string(b)
	}
	return vals, nil
}

// putEvents writes the encoded events in transactions of at most txnOps
// events and txnBytes, each with the new head, each committing only if
// the head's mod revision is still rev (then the one the last transaction
// made).
func (s *Store) putEvents(ctx context.Context, events []store.Event, vals []string, rev int64) error {
	for start := 0; start < len(events); {
		end, size := start, 0
		for end < len(events) && end-start < txnOps && size+len(vals[end]) <= txnBytes {
			size += len(vals[end])
			end++
		}
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(s.k(keyHead)), "=", rev)).
			Then(s.eventOps(events[start:end], vals[start:end])...).Commit()
		if err != nil {
			return fmt.Errorf("etcd: append events %d..%d: %w", events[start].Seq, events[end-1].Seq, err)
		}
		if !tr.Succeeded {
			return fmt.Errorf("append events from %d: %w", events[start].Seq, ErrHeadMoved)
		}
		rev = tr.Header.Revision // the head's new mod revision
		start = end
	}
	return nil
}

// eventOps returns the puts of one transaction: each event, then the head
// after the last.
func (s *Store) eventOps(events []store.Event, vals []string) []clientv3.Op {
	ops := make([]clientv3.Op, 0, len(events)+1)
	for i, e := range events {
		ops = append(ops, clientv3.OpPut(s.k(eventKey(e.Seq)), vals[i]))
	}
	last := events[len(events)-1]
	return append(ops, clientv3.OpPut(s.k(keyHead), headValue(last.Seq, last.Hash)))
}

// LastEvent returns the event with the highest seq. On an imported log
// that holds no event yet, the head is the checkpoint's seq, with no event
// stored under it: ok is false, as on an empty log.
func (s *Store) LastEvent(ctx context.Context) (store.Event, bool, error) {
	seq, _, err := s.readHead(ctx)
	if err != nil || seq == 0 {
		return store.Event{}, false, err
	}
	b, ok, err := s.blockAt(ctx, seq)
	if err != nil {
		return store.Event{}, false, err
	}
	if e, found := b.eventIn(seq); ok && found {
		return e, true, nil
	}
	if c, ok, cerr := s.Checkpoint(ctx); cerr == nil && ok && c.Seq == seq {
		return store.Event{}, false, nil
	}
	return store.Event{}, false, fmt.Errorf("etcd: last event %d: %w", seq, store.ErrNotFound)
}

// ScanEvents calls fn for each event with seq >= from, in seq order, in
// pages, until fn returns an error, which it returns.
func (s *Store) ScanEvents(ctx context.Context, from uint64, fn func(store.Event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := s.k(eventKey(from))
	if from > 0 {
		// from may sit inside a block: start at that block's key.
		b, ok, err := s.blockAt(ctx, from)
		if err != nil {
			return err
		}
		if ok {
			start = b.key
		}
	}
	return s.pageEvents(ctx, start, prefixEnd(s.k(pEvent)), false, func(e store.Event) error {
		if e.Seq < from {
			return nil
		}
		return fn(e)
	})
}

var errStop = errors.New("stop")

// pageEvents reads the events in [from, end) a page at a time, forward or
// backward, calling fn for each. Pages are separate reads: a scan sees
// events appended while it runs, as a badger scan does not; the chain only
// grows at its end, so that never reorders or skips what was there.
func (s *Store) pageEvents(ctx context.Context, from, end string, reverse bool, fn func(store.Event) error) error {
	limit := int64(pageSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(limit)}
		if reverse {
			opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if err != nil {
			return fmt.Errorf("etcd: scan events: %w", err)
		}
		bytes := 0
		for _, kv := range resp.Kvs {
			bytes += len(kv.Value)
			evs, err := decodeBlock(kv.Key, kv.Value)
			if err != nil {
				return err
			}
			if reverse {
				slices.Reverse(evs)
			}
			for _, e := range evs {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		limit = pageLimit(bytes, len(resp.Kvs))
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		lastKey := string(resp.Kvs[len(resp.Kvs)-1].Key)
		if reverse {
			end = lastKey // exclusive
		} else {
			from = lastKey + "\x00"
		}
	}
}

// QueryEvents returns the events matching f, in seq order. With a Limit,
// the newest Limit matches are returned (found reading backwards). There is
// no index: every index entry would cost an operation in each append
// transaction, and a filter is applied to the events read, as in badger.
func (s *Store) QueryEvents(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("etcd: negative limit %d", f.Limit)
	}
	var out []store.Event
	collect := func(e store.Event) error {
		if !f.Matches(e) {
			return nil
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) >= f.Limit {
			return errStop
		}
		return nil
	}
	start, end := s.k(pEvent), prefixEnd(s.k(pEvent))
	err := s.pageEvents(ctx, start, end, f.Limit > 0, collect)
	if f.Limit > 0 {
		slices.Reverse(out)
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// TamperEventForTest rewrites the stored event seq with mutate applied,
// WITHOUT recomputing any hash, under the same key even if mutate changes
// Seq (as package badger's). It exists only so tests can prove that audit
// verification catches tampering; the bastion never calls it.
func (s *Store) TamperEventForTest(seq uint64, mutate func(*store.Event)) error {
	b, ok, err := s.blockAt(context.Background(), seq)
	if err != nil {
		return err
	}
	if _, found := b.eventIn(seq); !ok || !found {
		return fmt.Errorf("etcd: event %d: %w", seq, store.ErrNotFound)
	}
	mutate(&b.events[seq-b.events[0].Seq])
	val, err := encodeBlock(b.events)
	if err != nil {
		return err
	}
	_, err = s.cli.Put(context.Background(), b.key, val)
	return err
}
