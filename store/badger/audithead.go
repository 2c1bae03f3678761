package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bdb "github.com/dgraph-io/badger/v4"
)

// keyAuditHead holds the seq and hash of the last event appended, written
// in the same transaction as the events (eventtxn.go).
const keyAuditHead = "eh"

type auditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

func headValue(seq uint64, hash string) []byte {
	b, _ := json.Marshal(auditHead{Seq: seq, Hash: hash})
	return b
}

// AuditHead returns the seq and hash of the last event appended, as
// recorded beside the events; ok is false on a store written before the
// head was kept, or that never held an event. A head beyond the last
// stored event means events were lost.
func (s *Store) AuditHead(ctx context.Context) (seq uint64, hash string, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, "", false, err
	}
	var h auditHead
	err = s.db.View(func(txn *bdb.Txn) error {
		it, err := txn.Get([]byte(keyAuditHead))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error { return json.Unmarshal(v, &h) })
	})
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("badger: read the audit head: %w", err)
	}
	return h.Seq, h.Hash, true, nil
}
