package etcd

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sshbastion/bastion/store"
)

// Recordings are appended in chunks:
//
//	rec/<id>\x00<20-digit counter>.<4-digit part>    bytes of a chunk
//
// The counter is the process's strictly increasing clock in nanoseconds;
// only the replica that holds a session records it, so its chunks stay in
// order. A chunk larger than chunkSize is stored as several parts, each in
// its own request (a crash between them loses the tail, as a crash before
// a flush does).
var recClock struct {
	sync.Mutex
	last int64
}

func nextChunkCounter() int64 {
	recClock.Lock()
	defer recClock.Unlock()
	n := time.Now().UnixNano()
	if n <= recClock.last {
		n = recClock.last + 1
	}
	recClock.last = n
	return n
}

// AppendRecording appends a chunk to recording id, durably.
func (s *Store) AppendRecording(ctx context.Context, id string, chunk []byte) error {
	if err := checkName("recording id", id); err != nil {
		return err
	}
	n := nextChunkCounter()
	for part, off := 0, 0; off < len(chunk) || part == 0; part, off = part+1, off+chunkSize {
		key := fmt.Sprintf("%s%s%s%020d.%04d", pRecord, id, sep, n, part)
		if _, err := s.cli.Put(ctx, s.k(key), string(chunk[off:min(off+chunkSize, len(chunk))])); err != nil {
			return fmt.Errorf("etcd: append recording: %w", err)
		}
	}
	return nil
}

// ReadRecording calls fn with every chunk of recording id, in order (a
// chunk stored in parts comes as its parts); store.ErrNotFound if none.
func (s *Store) ReadRecording(ctx context.Context, id string, fn func([]byte) error) error {
	if err := checkName("recording id", id); err != nil {
		return err
	}
	found := false
	err := s.scan(ctx, pRecord+id+sep, func(_ string, v []byte, _ int64) error {
		found = true
		return fn(v)
	})
	if err == nil && !found {
		return store.ErrNotFound
	}
	return err
}
