package badger

import (
	"errors"
	"fmt"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// What badger counts against a transaction, beyond the values we hand it
// (badger v4 txn.go checkSize, db.go sendToWriteCh):
//
//   - per entry: the key, plus 10 for the version suffix it appends at
//     commit, plus 2 meta bytes. An event is one entry under
//     e/<8-byte seq>: 10 key bytes, so 22 bytes besides its JSON value.
//     Events write no index entry.
//   - per transaction: one commit-marker entry ("!badger!txn", an 8-byte
//     version, the commit ts in decimal, 2 meta bytes), which also counts
//     as one entry.
//
// A transaction is refused (ErrTxnTooBig) once its entry count or size
// reaches MaxBatchCount or MaxBatchSize, both derived from the memtable size
// (15% of it, and that divided by a skiplist node's size; with the 8 MiB
// memtable Open configures: 1,258,291 bytes and 13,107 entries).
const (
	eventEntryOverhead = len(pEvent) + 8 + 10 + 2
	txnMarkerSize      = len("!badger!txn") + 8 + 20 + 2
)

// eventTxnLimits derives TxnLimits from badger's per-transaction bounds.
// It keeps a margin below them so that an estimate that is a little off
// (or a later badger counting a few more bytes) still fits: half the entry
// count, which also leaves room for one index entry per event should the
// layout ever grow one, and 7/8 of the bytes left after every entry's
// overhead.
func eventTxnLimits(maxBatchSize, maxBatchCount int64) (maxBytes, maxOps int) {
	// ">=" refuses: so maxBatchCount-1 entries at most, one of them the
	// commit marker.
	ops := (maxBatchCount - 2) / 2
	bytes := (maxBatchSize - 1 - int64(txnMarkerSize) - ops*int64(eventEntryOverhead)) * 7 / 8
	return int(max(bytes, 1)), int(max(ops, 1))
}

// TxnLimits reports how much one AppendEvents transaction holds: at most
// maxOps events whose JSON encodings sum to at most maxBytes. A call within
// both is committed atomically; package audit sizes its group commits by it.
// With the options Open uses (8 MiB memtable) that is 6,552 events and
// 975,478 bytes.
func (s *Store) TxnLimits() (maxBytes, maxOps int) { return s.txnBytes, s.txnOps }

// chunkEnd returns the end of the chunk of vals starting at start that fits
// TxnLimits. Every single value is known to fit.
func (s *Store) chunkEnd(vals [][]byte, start int) int {
	n, end := 0, start
	for end < len(vals) && end-start < s.txnOps && n+len(vals[end]) <= s.txnBytes {
		n += len(vals[end])
		end++
	}
	return max(end, start+1)
}

// commitEvents writes evs (encoded as vals) in one transaction if badger
// takes them, else in several: if badger still finds the transaction too
// big (its accounting changed, say), the chunk is split rather than the
// call failed. Nothing of a chunk is written unless its commit succeeds,
// and s.last follows each commit, so a failure leaves the cache matching
// what is stored. The caller holds evMu.
func (s *Store) commitEvents(evs []store.Event, vals [][]byte) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for i, e := range evs {
		if err := txn.Set(eventKey(e.Seq), vals[i]); err != nil {
			if errors.Is(err, bdb.ErrTxnTooBig) && i > 0 {
				txn.Discard()
				return s.commitSplit(evs, vals, i)
			}
			return appendErr(err)
		}
	}
	// The head, written with the events it ends on, is what lets a start
	// tell a log whose last events were lost (a damaged file) from one
	// that simply ends there (see AuditHead).
	last := evs[len(evs)-1]
	if err := txn.Set([]byte(keyAuditHead), headValue(last.Seq, last.Hash)); err != nil {
		if errors.Is(err, bdb.ErrTxnTooBig) && len(evs) > 1 {
			txn.Discard()
			return s.commitSplit(evs, vals, len(evs)/2)
		}
		return appendErr(err)
	}
	// The mutex makes this the only writer of event keys, so there is no
	// conflict to retry; Commit is durable (SyncWrites).
	if err := txn.Commit(); err != nil {
		// Commit adds the marker entry, which may tip a full
		// transaction over; nothing was written, so halve it.
		if errors.Is(err, bdb.ErrTxnTooBig) && len(evs) > 1 {
			return s.commitSplit(evs, vals, len(evs)/2)
		}
		return appendErr(err)
	}
	stored := copyEvent(last)
	s.last = &stored
	return nil
}

func (s *Store) commitSplit(evs []store.Event, vals [][]byte, at int) error {
	if err := s.commitEvents(evs[:at], vals[:at]); err != nil {
		return err
	}
	return s.commitEvents(evs[at:], vals[at:])
}

// appendErr wraps a badger error; a too-big one also wraps
// store.ErrTxnTooBig so callers need not know badger.
func appendErr(err error) error {
	if errors.Is(err, bdb.ErrTxnTooBig) {
		return fmt.Errorf("badger: append events: %w: %w", store.ErrTxnTooBig, err)
	}
	return fmt.Errorf("badger: append events: %w", err)
}
