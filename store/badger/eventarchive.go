package badger

import (
	"context"
	"errors"
	"fmt"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// keyCheckpoint holds the audit checkpoint (store.Checkpoint as JSON). It
// is outside the e/ prefix, so event scans never see it.
const keyCheckpoint = "ecp"

// deleteChunk is how many events one removal transaction deletes: far
// below badger's per-transaction entry count (13,107 with Open's options).
const deleteChunk = 1000

// Checkpoint implements store.AuditArchive.
func (s *Store) Checkpoint(ctx context.Context) (store.Checkpoint, bool, error) {
	var c store.Checkpoint
	err := s.get(ctx, keyCheckpoint, &c)
	if errors.Is(err, store.ErrNotFound) {
		return store.Checkpoint{}, false, nil
	}
	if err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("badger: read audit checkpoint: %w", err)
	}
	return c, true, nil
}

// nextSeq is the seq the next append must have: after the last event, or
// on a log holding none, after the checkpoint. The caller holds evMu.
func (s *Store) nextSeq() (uint64, error) {
	if s.last != nil {
		return s.last.Seq + 1, nil
	}
	c, ok, err := s.Checkpoint(context.Background())
	if err != nil || !ok {
		return 1, err
	}
	return c.Seq + 1, nil
}

// PutCheckpoint implements store.AuditArchive. evMu makes the checks and
// the write one step against appends and other checkpoints.
func (s *Store) PutCheckpoint(ctx context.Context, prev, c store.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	cur, ok, err := s.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if !cur.Same(prev) {
		return fmt.Errorf("badger: audit checkpoint is at seq %d, not %d: %w", cur.Seq, prev.Seq, store.ErrConflict)
	}
	if c.Seq <= cur.Seq {
		return fmt.Errorf("badger: audit checkpoint %d does not advance past %d", c.Seq, cur.Seq)
	}
	return s.update(ctx, func(txn *bdb.Txn) error {
		if s.last == nil {
			if ok {
				return errors.New("badger: the audit log holds no event to checkpoint")
			}
			// An empty log: c says where an imported log starts.
			return putJSON(txn, keyCheckpoint, c)
		}
		if c.Seq >= s.last.Seq {
			return fmt.Errorf("badger: audit checkpoint %d would cover the last event (%d), which stays", c.Seq, s.last.Seq)
		}
		var e store.Event
		if err := getJSON(txn, string(eventKey(c.Seq)), &e); err != nil {
			return fmt.Errorf("badger: audit checkpoint at seq %d: %w", c.Seq, err)
		}
		if e.Hash != c.Hash {
			return fmt.Errorf("badger: audit checkpoint at seq %d has hash %s, the stored event %s", c.Seq, c.Hash, e.Hash)
		}
		return putJSON(txn, keyCheckpoint, c)
	})
}

// DeleteEventsThrough implements store.AuditArchive. It does not hold
// evMu: appends write only seqs above the last event, removal only seqs at
// or below the checkpoint, which is below it. Each chunk's keys are read
// in one transaction and deleted in another, so the deleting transaction
// reads nothing and cannot conflict with an append.
func (s *Store) DeleteEventsThrough(ctx context.Context, seq uint64) (int, error) {
	c, ok, err := s.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	if !ok || seq > c.Seq {
		return 0, fmt.Errorf("badger: refusing to remove audit events through seq %d: the checkpoint is at %d", seq, c.Seq)
	}
	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var keys [][]byte
		err := s.db.View(func(txn *bdb.Txn) error {
			opts := bdb.DefaultIteratorOptions
			opts.Prefix = []byte(pEvent)
			opts.PrefetchValues = false
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Seek(eventKey(0)); it.Valid() && len(keys) < deleteChunk; it.Next() {
				k := it.Item().KeyCopy(nil)
				if keySeq(k) > seq {
					break
				}
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return removed, err
		}
		err = s.db.Update(func(txn *bdb.Txn) error {
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("badger: remove audit events: %w", err)
		}
		removed += len(keys)
	}
}
