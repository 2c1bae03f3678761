package badger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// checkTuple rejects tuples that could not be indexed unambiguously. An
// object must be "type:id" because the subject index finds objects by type.
func checkTuple(t store.Tuple) error {
	for _, f := range []struct{ what, v string }{
		{"object", t.Object}, {"relation", t.Relation}, {"subject", t.Subject},
	} {
		if err := checkName("tuple "+f.what, f.v); err != nil {
			return fmt.Errorf("%w (tuple %s)", err, t)
		}
	}
	if i := strings.IndexByte(t.Object, ':'); i <= 0 || i == len(t.Object)-1 {
		return fmt.Errorf("badger: tuple object %q is not type:id", t.Object)
	}
	return nil
}

func objKey(t store.Tuple) []byte {
	return []byte(pTupleObj + t.Object + sep + t.Relation + sep + t.Subject)
}

func subKey(t store.Tuple) []byte {
	return []byte(pTupleSub + t.Subject + sep + t.Object + sep + t.Relation)
}

// encodeTupleValue and decodeTupleValue are the index value of a tuple:
// its expiry, condition and context (store.EncodeTupleValue, which
// package etcd shares).
func encodeTupleValue(t store.Tuple) ([]byte, error) {
	v, err := store.EncodeTupleValue(t)
	if err != nil {
		return nil, fmt.Errorf("badger: %w", err)
	}
	return v, nil
}

func decodeTupleValue(v []byte, t *store.Tuple) error {
	if err := store.DecodeTupleValue(v, t); err != nil {
		return fmt.Errorf("badger: %w", err)
	}
	return nil
}

// WriteTuples deletes del then adds add, in one transaction (see the
// package comment for calls too large for one).
func (s *Store) WriteTuples(ctx context.Context, add, del []store.Tuple) error {
	// Validate everything first so a bad tuple fails the call before
	// anything is written.
	for _, t := range del {
		if err := checkTuple(t); err != nil {
			return err
		}
	}
	for _, t := range add {
		if err := checkTuple(t); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	type op struct {
		key, val []byte
		del      bool
	}
	ops := make([]op, 0, 2*(len(add)+len(del)))
	for _, t := range del {
		ops = append(ops, op{key: objKey(t), del: true}, op{key: subKey(t), del: true})
	}
	for _, t := range add {
		v, err := encodeTupleValue(t)
		if err != nil {
			return err
		}
		ops = append(ops, op{key: objKey(t), val: v}, op{key: subKey(t), val: v})
	}
	// A split call has committed part of itself by the time it fails:
	// its changes are published then too (a change for a tuple that was
	// not written only makes a consumer re-read).
	committed := false
	defer func() {
		if committed {
			s.changes.publish(tupleChanges(add, del)...)
		}
	}()
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for i := 0; i < len(ops); {
		o := ops[i]
		var err error
		if o.del {
			err = txn.Delete(o.key)
		} else {
			err = txn.Set(o.key, o.val)
		}
		if errors.Is(err, bdb.ErrTxnTooBig) {
			// Too big for one transaction: commit what we have and
			// carry on in a new one (documented non-atomic case).
			if err := txn.Commit(); err != nil {
				return err
			}
			committed = true
			txn = s.db.NewTransaction(true)
			continue
		}
		if err != nil {
			return err
		}
		i++
	}
	// Blind writes never conflict, so no retry loop is needed.
	if err := txn.Commit(); err != nil {
		return err
	}
	committed = true
	return nil
}

// tupleScan decodes live tuples under prefix. parse turns the key (without
// its role prefix) into a tuple.
func (s *Store) tupleScan(ctx context.Context, prefix string, parse func(k []byte) (store.Tuple, bool)) ([]store.Tuple, error) {
	now := s.clock()
	var out []store.Tuple
	err := s.db.View(func(txn *bdb.Txn) error {
		return scan(ctx, txn, prefix, func(k, v []byte) error {
			var val store.Tuple
			if err := decodeTupleValue(v, &val); err != nil {
				return err
			}
			// Expired grants must be invisible the instant they expire,
			// without waiting for any sweeper.
			if val.Expired(now) {
				return nil
			}
			t, ok := parse(k[3:]) // both tuple prefixes are 3 bytes
			if !ok {
				return fmt.Errorf("badger: malformed tuple key %q", k)
			}
			t.Expires, t.Condition, t.Context = val.Expires, val.Condition, val.Context
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// split3 splits b at the two NUL separators.
func split3(b []byte) (a, c, d string, ok bool) {
	parts := bytes.SplitN(b, []byte(sep), 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), true
}

func parseObjKey(k []byte) (store.Tuple, bool) {
	o, r, s, ok := split3(k)
	return store.Tuple{Object: o, Relation: r, Subject: s}, ok
}

func parseSubKey(k []byte) (store.Tuple, bool) {
	s, o, r, ok := split3(k)
	return store.Tuple{Object: o, Relation: r, Subject: s}, ok
}

// TuplesByObject returns the live tuples on object (with relation, unless
// relation is ""). It is one prefix scan of the object index.
func (s *Store) TuplesByObject(ctx context.Context, object, relation string) ([]store.Tuple, error) {
	if err := checkName("tuple object", object); err != nil {
		return nil, err
	}
	// NUL in a query argument could widen the prefix across key parts.
	if strings.Contains(relation, sep) {
		return nil, fmt.Errorf("badger: tuple relation %q contains NUL", relation)
	}
	prefix := pTupleObj + object + sep
	if relation != "" {
		prefix += relation + sep
	}
	return s.tupleScan(ctx, prefix, parseObjKey)
}

// TuplesBySubject returns the live tuples of subject on objects of type
// objectType (every type if ""). It is one prefix scan of the subject index.
func (s *Store) TuplesBySubject(ctx context.Context, subject, objectType string) ([]store.Tuple, error) {
	if err := checkName("tuple subject", subject); err != nil {
		return nil, err
	}
	// A NUL or ':' in the type would let the prefix reach past the type
	// into object ids (or across key parts).
	if strings.ContainsAny(objectType, sep+":") {
		return nil, fmt.Errorf("badger: bad object type %q", objectType)
	}
	prefix := pTupleSub + subject + sep
	if objectType != "" {
		prefix += objectType + ":"
	}
	return s.tupleScan(ctx, prefix, parseSubKey)
}

// ListTuples returns every live tuple, ordered by object.
func (s *Store) ListTuples(ctx context.Context) ([]store.Tuple, error) {
	return s.tupleScan(ctx, pTupleObj, parseObjKey)
}

// PurgeExpiredTuples deletes the index entries of tuples expired at the
// Clock's now and returns how many tuples it removed. Reads never need it;
// it only reclaims space.
func (s *Store) PurgeExpiredTuples(ctx context.Context) (int, error) {
	now := s.clock()
	var dead []store.Tuple
	err := s.db.View(func(txn *bdb.Txn) error {
		return scan(ctx, txn, pTupleObj, func(k, v []byte) error {
			var val store.Tuple
			if err := decodeTupleValue(v, &val); err != nil || !val.Expired(now) {
				return err
			}
			t, ok := parseObjKey(k[3:])
			if !ok {
				return fmt.Errorf("badger: malformed tuple key %q", k)
			}
			t.Expires = val.Expires
			dead = append(dead, t)
			return nil
		})
	})
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	// Delete only what is still expired: a tuple re-granted since the scan
	// must survive, hence the re-check inside the write transaction. Chunks
	// keep each transaction well below badger's size limit.
	total := 0
	for len(dead) > 0 {
		chunk := dead[:min(len(dead), 10000)]
		dead = dead[len(chunk):]
		var gone []store.Change
		err := s.update(ctx, func(txn *bdb.Txn) error {
			gone = gone[:0]
			for _, t := range chunk {
				expired, err := stillExpired(txn, t, now)
				if err != nil {
					return err
				}
				if !expired {
					continue
				}
				if err := txn.Delete(objKey(t)); err != nil {
					return err
				}
				if err := txn.Delete(subKey(t)); err != nil {
					return err
				}
				gone = append(gone, tupleChange(t, true))
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		s.changes.publish(gone...)
		total += len(gone)
	}
	return total, nil
}

// stillExpired reports whether t is stored and expired at now.
func stillExpired(txn *bdb.Txn, t store.Tuple, now time.Time) (bool, error) {
	item, err := txn.Get(objKey(t))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return false, err
	}
	var val store.Tuple
	err = decodeTupleValue(v, &val)
	return err == nil && val.Expired(now), err
}
