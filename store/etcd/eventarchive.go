package etcd

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// keyCheckpoint holds the audit checkpoint (store.Checkpoint as JSON). It
// is no change of the change feed (see changeOf).
const keyCheckpoint = "~ecp"

// deleteOps is how many events one removal transaction deletes: within
// txnOps, like every transaction of this package.
const deleteOps = txnOps

// readCheckpoint returns the stored checkpoint and its key's mod revision
// (0 when there is none).
func (s *Store) readCheckpoint(ctx context.Context) (store.Checkpoint, bool, int64, error) {
	resp, err := s.cli.Get(ctx, s.k(keyCheckpoint))
	if err != nil {
		return store.Checkpoint{}, false, 0, fmt.Errorf("etcd: read audit checkpoint: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return store.Checkpoint{}, false, 0, nil
	}
	var c store.Checkpoint
	if err := json.Unmarshal(resp.Kvs[0].Value, &c); err != nil {
		return store.Checkpoint{}, false, 0, fmt.Errorf("etcd: corrupt audit checkpoint: %w", err)
	}
	return c, true, resp.Kvs[0].ModRevision, nil
}

// Checkpoint implements store.AuditArchive.
func (s *Store) Checkpoint(ctx context.Context) (store.Checkpoint, bool, error) {
	c, ok, _, err := s.readCheckpoint(ctx)
	return c, ok, err
}

// PutCheckpoint implements store.AuditArchive. Its transaction compares
// the checkpoint key's mod revision with the one read, so of two archives
// racing from the same checkpoint one fails with store.ErrConflict, and
// the checkpointed event's, so that event is still the one checked.
func (s *Store) PutCheckpoint(ctx context.Context, prev, c store.Checkpoint) error {
	cur, ok, cpRev, err := s.readCheckpoint(ctx)
	if err != nil {
		return err
	}
	if !cur.Same(prev) {
		return fmt.Errorf("etcd: audit checkpoint is at seq %d, not %d: %w", cur.Seq, prev.Seq, store.ErrConflict)
	}
	if c.Seq <= cur.Seq {
		return fmt.Errorf("etcd: audit checkpoint %d does not advance past %d", c.Seq, cur.Seq)
	}
	val, err := json.Marshal(c)
	if err != nil {
		return err
	}
	last, headRev, err := s.readHead(ctx)
	if err != nil {
		return err
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.k(keyCheckpoint)), "=", cpRev)}
	ops := []clientv3.Op{clientv3.OpPut(s.k(keyCheckpoint), string(val))}
	switch {
	case last == 0 && !ok:
		// An empty log: c says where an imported log starts. The head
		// is set to it, so appends continue at c.Seq+1.
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.k(keyHead)), "=", headRev))
		ops = append(ops, clientv3.OpPut(s.k(keyHead), headValue(c.Seq, c.Hash)))
	case c.Seq >= last:
		return fmt.Errorf("etcd: audit checkpoint %d would cover the last event (%d), which stays", c.Seq, last)
	default:
		b, found, err := s.blockAt(ctx, c.Seq)
		if err != nil {
			return err
		}
		e, in := b.eventIn(c.Seq)
		if !found || !in {
			return fmt.Errorf("etcd: audit checkpoint at seq %d: %w", c.Seq, store.ErrNotFound)
		}
		if e.Hash != c.Hash {
			return fmt.Errorf("etcd: audit checkpoint at seq %d has hash %s, the stored event %s", c.Seq, c.Hash, e.Hash)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.key), "=", b.modRev))
	}
	tr, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("etcd: put audit checkpoint: %w", err)
	}
	if !tr.Succeeded {
		return fmt.Errorf("etcd: audit checkpoint or event %d changed meanwhile: %w", c.Seq, store.ErrConflict)
	}
	return nil
}

// DeleteEventsThrough implements store.AuditArchive: it reads the keys of
// up to deleteOps event keys at or below seq, deletes them in one
// transaction, and repeats; a block that holds seq and later events is
// rewritten to hold only the later ones, under the key of the first of
// them. Appends compare only the head, which removal never touches, so
// they go on meanwhile. (etcd keeps deleted values until the revision is
// compacted: see the README on compaction.)
func (s *Store) DeleteEventsThrough(ctx context.Context, seq uint64) (int, error) {
	c, ok, err := s.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	if !ok || seq > c.Seq {
		return 0, fmt.Errorf("etcd: refusing to remove audit events through seq %d: the checkpoint is at %d", seq, c.Seq)
	}
	if err := s.splitBlockAt(ctx, seq); err != nil {
		return 0, err
	}
	removed := 0
	from, end := s.k(eventKey(0)), s.k(eventKey(seq+1))
	for {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(deleteOps))
		if err != nil {
			return removed, fmt.Errorf("etcd: list archived events: %w", err)
		}
		if len(resp.Kvs) == 0 {
			return removed, nil
		}
		// How many events each key holds: up to the next key's seq, and
		// for the last one up to seq (splitBlockAt cut what was beyond).
		ops := make([]clientv3.Op, len(resp.Kvs))
		counted := 0
		for i, kv := range resp.Kvs {
			ops[i] = clientv3.OpDelete(string(kv.Key))
			first, err := s.keySeq(kv.Key)
			if err != nil {
				return removed, err
			}
			next := seq + 1
			if i+1 < len(resp.Kvs) {
				if next, err = s.keySeq(resp.Kvs[i+1].Key); err != nil {
					return removed, err
				}
			} else if resp.More {
				next = 0 // counted with the next page's first key
			}
			if next > first {
				counted += int(next - first)
			}
		}
		if resp.More {
			// The last key of this page is deleted with the next page,
			// where its count is known.
			ops = ops[:len(ops)-1]
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return removed, fmt.Errorf("etcd: remove archived events: %w", err)
		}
		removed += counted
		if !resp.More {
			return removed, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key)
	}
}

// splitBlockAt makes seq the last event of its key: a block holding seq
// and later events is replaced, in one transaction that compares its mod
// revision, by a block of the later ones under the first one's key. Both
// halves are written in one transaction, so no event is ever held twice
// or by no key.
func (s *Store) splitBlockAt(ctx context.Context, seq uint64) error {
	b, ok, err := s.blockAt(ctx, seq)
	if err != nil || !ok || b.events[len(b.events)-1].Seq == seq {
		return err
	}
	cut := seq - b.events[0].Seq + 1
	rest, err := encodeBlock(b.events[cut:])
	if err != nil {
		return err
	}
	kept, err := encodeBlock(b.events[:cut])
	if err != nil {
		return err
	}
	tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(b.key), "=", b.modRev)).
		Then(clientv3.OpPut(s.k(eventKey(seq+1)), rest), clientv3.OpPut(b.key, kept)).Commit()
	if err != nil {
		return fmt.Errorf("etcd: split event block %s: %w", b.key, err)
	}
	if !tr.Succeeded {
		return fmt.Errorf("etcd: event block %s changed meanwhile: %w", b.key, store.ErrConflict)
	}
	return nil
}
