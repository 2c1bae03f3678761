package badger

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// recClock hands out strictly increasing chunk keys across the process.
var recClock struct {
	sync.Mutex
	last int64
}

func nextChunkKey() []byte {
	recClock.Lock()
	n := time.Now().UnixNano()
	if n <= recClock.last {
		n = recClock.last + 1
	}
	recClock.last = n
	recClock.Unlock()
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}

// AppendRecording appends a chunk to recording id, durably.
func (s *Store) AppendRecording(ctx context.Context, id string, chunk []byte) error {
	if err := checkName("recording id", id); err != nil {
		return err
	}
	key := append([]byte(pRecord+id+sep), nextChunkKey()...)
	val := bytes.Clone(chunk)
	return s.update(ctx, func(txn *bdb.Txn) error { return txn.Set(key, val) })
}

// ReadRecording calls fn with every chunk of recording id, in order.
func (s *Store) ReadRecording(ctx context.Context, id string, fn func([]byte) error) error {
	if err := checkName("recording id", id); err != nil {
		return err
	}
	found := false
	err := s.db.View(func(txn *bdb.Txn) error {
		return scan(ctx, txn, pRecord+id+sep, func(_, v []byte) error {
			found = true
			return fn(v)
		})
	})
	if err == nil && !found {
		return store.ErrNotFound
	}
	return err
}
