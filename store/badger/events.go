package badger

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

func eventKey(seq uint64) []byte {
	k := make([]byte, len(pEvent)+8)
	copy(k, pEvent)
	binary.BigEndian.PutUint64(k[len(pEvent):], seq)
	return k
}

func keySeq(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(pEvent):]) }

func copyEvent(e store.Event) store.Event {
	e.Details = maps.Clone(e.Details)
	return e
}

// loadLastEvent fills the in-memory cache of the highest event.
func (s *Store) loadLastEvent() error {
	return s.db.View(func(txn *bdb.Txn) error {
		opts := bdb.DefaultIteratorOptions
		opts.Reverse = true
		opts.PrefetchValues = false
		opts.Prefix = []byte(pEvent)
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Seek(eventKey(math.MaxUint64))
		if !it.Valid() {
			s.last = nil
			return nil
		}
		var e store.Event
		if err := it.Item().Value(func(v []byte) error { return decodeEvent(v, &e) }); err != nil {
			return fmt.Errorf("badger: decode last event: %w", err)
		}
		s.last = &e
		return nil
	})
}

// AppendEvents durably appends events. The first seq must be the last
// stored seq + 1 (on a log holding no event, the checkpoint's + 1) and the
// batch itself must be consecutive: the audit chain relies on there being
// exactly one event per seq, with no hole an attacker (or a bug) could hide
// a deletion in. The whole call is checked before anything is written, so
// a call with a gap writes nothing; one whose first seq is already stored
// (another writer appended first) wraps store.ErrConflict.
//
// A call within TxnLimits is one atomic, durable transaction. A larger one
// is committed in several, in seq order, each atomic; a failure or crash
// between them leaves a prefix of the call stored, which LastEvent reports
// and the next call's gap check continues from. An event whose encoding
// alone exceeds TxnLimits' maxBytes fails the call with an error wrapping
// store.ErrTxnTooBig (and badger.ErrTxnTooBig) before anything is written.
func (s *Store) AppendEvents(ctx context.Context, events []store.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	vals := make([][]byte, len(events))
	for i, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("badger: encode event %d: %w", e.Seq, err)
		}
		// Refused up front, not midway: splitting could not make it
		// fit, and the caller is promised that a too-big call wrote
		// nothing, so it may retry the other events.
		if len(b) > s.txnBytes {
			return fmt.Errorf("badger: event %d encodes to %d bytes, more than one transaction holds (%d): %w: %w",
				e.Seq, len(b), s.txnBytes, store.ErrTxnTooBig, bdb.ErrTxnTooBig)
		}
		vals[i] = b
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	want, err := s.nextSeq()
	if err != nil {
		return err
	}
	if first := events[0].Seq; first < want && first > 0 {
		// Another writer took these seqs (a second audit.Log on this
		// store): it re-chains after LastEvent and retries.
		return fmt.Errorf("badger: audit seq gap: seq %d is already stored (next is %d): %w", first, want, store.ErrConflict)
	}
	for i, e := range events {
		if e.Seq != want+uint64(i) {
			return fmt.Errorf("badger: audit seq gap: event %d has seq %d, want %d", i, e.Seq, want+uint64(i))
		}
	}
	// Not checking ctx between chunks: once the first is written,
	// stopping early would only leave more of the call unwritten.
	for start := 0; start < len(events); {
		end := s.chunkEnd(vals, start)
		if err := s.commitEvents(events[start:end], vals[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// LastEvent returns the event with the highest seq, from memory.
func (s *Store) LastEvent(ctx context.Context) (store.Event, bool, error) {
	if err := ctx.Err(); err != nil {
		return store.Event{}, false, err
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if s.last == nil {
		return store.Event{}, false, nil
	}
	return copyEvent(*s.last), true, nil
}

// iterEvents calls fn with each stored event from seq from (reverse: down
// from seq from), in key order, until fn returns errStop or another error.
func (s *Store) iterEvents(ctx context.Context, from uint64, reverse bool, fn func(store.Event) error) error {
	return s.db.View(func(txn *bdb.Txn) error {
		opts := bdb.DefaultIteratorOptions
		opts.Prefix = []byte(pEvent)
		// Events are far below badger's ValueThreshold, so their values
		// sit in the LSM tree next to the keys: prefetching only adds a
		// goroutine and a copy per item (measured: ~25% of a full scan).
		opts.PrefetchValues = false
		opts.Reverse = reverse
		it := txn.NewIterator(opts)
		defer it.Close()
		n := 0
		for it.Seek(eventKey(from)); it.Valid(); it.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			var e store.Event
			if err := item.Value(func(v []byte) error { return decodeEvent(v, &e) }); err != nil {
				return fmt.Errorf("badger: decode event at seq %d: %w", keySeq(item.Key()), err)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanBatch is how many decoded events ScanEvents hands over at a time.
const scanBatch = 512

// ScanEvents calls fn for each event with seq >= from, in seq order, until
// fn returns an error, which it returns. Reading and decoding run in a
// goroutine a couple of batches ahead of fn, so a long scan (audit verify
// hashing every event) keeps two cores busy; fn itself is called from the
// caller's goroutine, one event at a time.
func (s *Store) ScanEvents(ctx context.Context, from uint64, fn func(store.Event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []store.Event, 2)
	var readErr error
	go func() {
		defer close(batches)
		send := func(b []store.Event) error {
			select {
			case batches <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		batch := make([]store.Event, 0, scanBatch)
		readErr = s.iterEvents(ctx, from, false, func(e store.Event) error {
			batch = append(batch, e)
			if len(batch) < scanBatch {
				return nil
			}
			b := batch
			batch = make([]store.Event, 0, scanBatch)
			return send(b)
		})
		if readErr == nil && len(batch) > 0 {
			readErr = send(batch)
		}
	}()
	var fnErr error
	for batch := range batches { // drains until the reader has exited
		for _, e := range batch {
			if fnErr != nil {
				break
			}
			if fnErr = fn(e); fnErr != nil {
				cancel() // stop the reader; keep draining until it closes
			}
		}
	}
	if fnErr != nil {
		return fnErr
	}
	return readErr
}

var errStop = errors.New("stop")

// QueryEvents returns the events matching f, in seq order. Since is
// inclusive and Until exclusive. With a Limit, the newest Limit matches are
// returned (found by scanning backwards), still in seq order.
func (s *Store) QueryEvents(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("badger: negative limit %d", f.Limit)
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
	var err error
	if f.Limit > 0 {
		err = s.iterEvents(ctx, math.MaxUint64, true, collect)
		slices.Reverse(out)
	} else {
		err = s.iterEvents(ctx, 0, false, collect)
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// TamperEventForTest rewrites the stored event seq with mutate applied,
// WITHOUT recomputing any hash, under the same key even if mutate changes
// Seq. It exists only so tests can prove that audit verification catches
// tampering; the bastion never calls it.
func (s *Store) TamperEventForTest(seq uint64, mutate func(*store.Event)) error {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	var e store.Event
	err := s.update(context.Background(), func(txn *bdb.Txn) error {
		if err := getJSON(txn, string(eventKey(seq)), &e); err != nil {
			return err
		}
		mutate(&e)
		return putJSON(txn, string(eventKey(seq)), e)
	})
	if err == nil && s.last != nil && s.last.Seq == seq {
		// Keep the cache what a reopen would load.
		last := copyEvent(e)
		s.last = &last
	}
	return err
}
