package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// Event keys hold blocks. The key e/<seq> holds either one event (as
// AppendEvents writes them, e.g. on migrate) or a JSON array of
// consecutive events whose first has that seq (as the audit sequencer
// writes them, sequencer.go): one key per sequencer transaction instead of
// one per event, which is what lets one chain commit several replicas'
// events at a time (a transaction of one 64-event key commits about half
// again as often as one of 64 keys). Readers take both.

// blockBytes bounds one block's value. A page of event keys is read at
// once, so this bounds what a scan holds in memory too (see pageLimit).
const blockBytes = 256 << 10

// Blocks are stored compressed (zstd, at its fastest): consecutive audit
// events repeat most of their bytes, and etcd pays for every byte several
// times (the raft log of each member, its backend, the peer traffic), so
// about a fifth of them commit faster and let the log grow about five
// times longer before archiving. A lone event stays plain JSON.
var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	blockEnc  = mustZstdEncoder()
	// Decoding is bounded: a block never decodes to more than
	// blockBytes, so a corrupt or hostile value cannot make a reader
	// allocate without bound.
	blockDec = mustZstdDecoder()
)

func mustZstdEncoder() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err) // only for invalid options
	}
	return e
}

func mustZstdDecoder() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(2*blockBytes))
	if err != nil {
		panic(err) // only for invalid options
	}
	return d
}

// packBlock is the stored form of a block's JSON array.
func packBlock(array []byte) string { return string(blockEnc.EncodeAll(array, nil)) }

// decodeBlock decodes an event key's value: one event, an array, or a
// compressed array.
func decodeBlock(key, val []byte) ([]store.Event, error) {
	if bytes.HasPrefix(val, zstdMagic) {
		plain, err := blockDec.DecodeAll(val, nil)
		if err != nil {
			return nil, fmt.Errorf("etcd: decompress event block %s: %w", key, err)
		}
		if len(plain) == 0 || plain[0] != '[' {
			return nil, fmt.Errorf("etcd: event block %s: not an array of events", key)
		}
		val = plain
	}
	if len(val) > 0 && val[0] == '[' {
		var evs []store.Event
		if err := json.Unmarshal(val, &evs); err != nil {
			return nil, fmt.Errorf("etcd: decode event block %s: %w", key, err)
		}
		return evs, nil
	}
	var e store.Event
	if err := json.Unmarshal(val, &e); err != nil {
		return nil, fmt.Errorf("etcd: decode event %s: %w", key, err)
	}
	return []store.Event{e}, nil
}

// keySeq returns the seq an event key names (its block's first event).
func (s *Store) keySeq(key []byte) (uint64, error) {
	k := strings.TrimPrefix(string(key), s.k(pEvent))
	n, err := strconv.ParseUint(k, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("etcd: event key %q: %w", key, err)
	}
	return n, nil
}

// block is one event key as read: its key, mod revision and events.
type block struct {
	key    string
	modRev int64
	events []store.Event
}

// blockAt returns the block holding seq: the last event key at or below
// seq, if its events reach seq. ok is false when none does.
func (s *Store) blockAt(ctx context.Context, seq uint64) (block, bool, error) {
	resp, err := s.cli.Get(ctx, s.k(eventKey(0)), clientv3.WithRange(s.k(eventKey(seq+1))),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return block{}, false, fmt.Errorf("etcd: read event %d: %w", seq, err)
	}
	if len(resp.Kvs) == 0 {
		return block{}, false, nil
	}
	kv := resp.Kvs[0]
	evs, err := decodeBlock(kv.Key, kv.Value)
	if err != nil {
		return block{}, false, err
	}
	if len(evs) == 0 || evs[len(evs)-1].Seq < seq {
		return block{}, false, nil
	}
	return block{key: string(kv.Key), modRev: kv.ModRevision, events: evs}, true, nil
}

// eventIn returns the event with seq in b.
func (b block) eventIn(seq uint64) (store.Event, bool) {
	if len(b.events) == 0 || seq < b.events[0].Seq {
		return store.Event{}, false
	}
	i := seq - b.events[0].Seq
	if i >= uint64(len(b.events)) || b.events[i].Seq != seq {
		return store.Event{}, false
	}
	return b.events[i], true
}

// encodeBlock encodes evs as one key's value: a lone event as before
// blocks, several as a compressed array.
func encodeBlock(evs []store.Event) (string, error) {
	if len(evs) == 1 {
		b, err := json.Marshal(evs[0])
		return string(b), err
	}
	b, err := json.Marshal(evs)
	if err != nil {
		return "", err
	}
	return packBlock(b), nil
}

// pageLimit is how many event keys the next page reads, from the size of
// the last page's values: up to pageSize single events, fewer blocks, so
// that a page stays near scanPageBytes.
func pageLimit(lastBytes, lastKeys int) int64 {
	const scanPageBytes = 4 << 20
	if lastKeys == 0 || lastBytes == 0 {
		return pageSize
	}
	avg := max(1, lastBytes/lastKeys)
	return int64(max(4, min(pageSize, scanPageBytes/avg)))
}
