package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Values larger than one etcd request holds (a model of 1 MiB, its JSON
// record, a large secret) are split: the chunks go under
//
//	blob/<random id>/<index, 8 digits>
//
// each in its own request, and the record's key then gets a manifest,
// which is what makes the new value visible, atomically. A manifest
// begins with the byte 0xff, which no JSON text (nor, by the rule below,
// any inline value) begins with; a raw value (a secret) that happens to
// begin with 0xff is stored as a blob too, so every value decodes
// unambiguously. Blob chunks are never modified: replacing or deleting a
// record deletes the chunks of its previous manifest afterwards, and a
// crash in between leaves them as garbage under blob/, never as a wrong
// value.
const (
	manifestMark = 0xff
	inlineMax    = 512 << 10 // larger values become blobs
	chunkSize    = 512 << 10
)

type manifest struct {
	ID     string `json:"id"`
	Chunks int    `json:"chunks"`
	Size   int    `json:"size"`
}

func isManifest(v []byte) bool { return len(v) > 0 && v[0] == manifestMark }

func parseManifest(v []byte) (manifest, error) {
	var m manifest
	if err := json.Unmarshal(v[1:], &m); err != nil || m.ID == "" {
		return m, fmt.Errorf("etcd: corrupt blob manifest: %v", err)
	}
	return m, nil
}

// encode returns what to store for v: v itself, or a manifest once v's
// chunks are written. drop deletes those chunks again, for a caller whose
// write of the manifest failed or lost a race.
func (s *Store) encode(ctx context.Context, v []byte) (val string, drop func(), err error) {
	noop := func() {}
	if len(v) <= inlineMax && !isManifest(v) {
		return string(v), noop, nil
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return "", noop, err
	}
	m := manifest{ID: hex.EncodeToString(id), Size: len(v)}
	drop = func() { s.dropBlob(m.ID) }
	for off := 0; off < len(v) || m.Chunks == 0; off += chunkSize {
		part := v[off:min(off+chunkSize, len(v))]
		if _, err := s.cli.Put(ctx, s.chunkKey(m.ID, m.Chunks), string(part)); err != nil {
			drop()
			return "", noop, fmt.Errorf("etcd: write blob: %w", err)
		}
		m.Chunks++
	}
	b, _ := json.Marshal(m)
	return string(append([]byte{manifestMark}, b...)), drop, nil
}

func (s *Store) chunkKey(id string, i int) string {
	return fmt.Sprintf("%s%s%s/%08d", s.prefix, pBlob, id, i)
}

// dropBlob deletes a blob's chunks. Failing leaves garbage, not damage,
// so it does not report.
func (s *Store) dropBlob(id string) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	p := s.k(pBlob + id + "/")
	_, _ = s.cli.Delete(ctx, p, clientv3.WithPrefix())
}

// dropPrev deletes the blob that a replaced or deleted value referred to.
func (s *Store) dropPrev(prev []byte) {
	if isManifest(prev) {
		if m, err := parseManifest(prev); err == nil {
			s.dropBlob(m.ID)
		}
	}
}

// decode returns the value a stored value stands for, reading the chunks
// of a manifest at rev (the revision the manifest was read at), so that a
// replacement racing the read cannot mix two values.
func (s *Store) decode(ctx context.Context, v []byte, rev int64) ([]byte, error) {
	if !isManifest(v) {
		return v, nil
	}
	m, err := parseManifest(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, m.Size)
	n := 0
	p := s.k(pBlob + m.ID + "/")
	for from := p; ; {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(prefixEnd(p)), clientv3.WithLimit(2), clientv3.WithRev(rev))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, fmt.Errorf("etcd: value changed while it was read (retry): %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("etcd: read blob: %w", err)
		}
		for _, kv := range resp.Kvs {
			out = append(out, kv.Value...)
			n++
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if n != m.Chunks || len(out) != m.Size {
		return nil, fmt.Errorf("etcd: blob %s has %d chunks, %d bytes; its manifest says %d, %d", m.ID, n, len(out), m.Chunks, m.Size)
	}
	return out, nil
}

// putValue stores v at key, blindly, chunked if it is large.
func (s *Store) putValue(ctx context.Context, key string, v []byte) error {
	val, _, err := s.encode(ctx, v)
	if err != nil {
		return err
	}
	resp, err := s.cli.Put(ctx, s.k(key), val, clientv3.WithPrevKV())
	if err != nil {
		// Unknown whether it landed: the chunks stay (garbage at
		// worst) rather than risk a manifest without them.
		return fmt.Errorf("etcd: put: %w", err)
	}
	if resp.PrevKv != nil {
		s.dropPrev(resp.PrevKv.Value)
	}
	return nil
}
