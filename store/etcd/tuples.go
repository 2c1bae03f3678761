package etcd

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// tuplesPerTxn: each tuple is two index entries.
const tuplesPerTxn = txnOps / 2

// checkTuple rejects tuples that could not be indexed unambiguously (the
// same rules as package badger's).
func checkTuple(t store.Tuple) error {
	for _, f := range []struct{ what, v string }{
		{"object", t.Object}, {"relation", t.Relation}, {"subject", t.Subject},
	} {
		if err := checkName("tuple "+f.what, f.v); err != nil {
			return fmt.Errorf("%w (tuple %s)", err, t)
		}
	}
	if i := strings.IndexByte(t.Object, ':'); i <= 0 || i == len(t.Object)-1 {
		return fmt.Errorf("etcd: tuple object %q is not type:id", t.Object)
	}
	return nil
}

func objKey(t store.Tuple) string { return pTupleObj + t.Object + sep + t.Relation + sep + t.Subject }
func subKey(t store.Tuple) string { return pTupleSub + t.Subject + sep + t.Object + sep + t.Relation }

// encodeTupleValue and decodeTupleValue are a tuple's index value, as
// package badger keeps it (store.EncodeTupleValue).
func encodeTupleValue(t store.Tuple) (string, error) {
	v, err := store.EncodeTupleValue(t)
	if err != nil {
		return "", fmt.Errorf("etcd: %w", err)
	}
	return string(v), nil
}

func decodeTupleValue(v []byte, t *store.Tuple) error {
	if err := store.DecodeTupleValue(v, t); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}

// parseTupleKey parses a to/ key (without the store prefix).
func parseTupleKey(k string) (store.Tuple, bool) {
	if !strings.HasPrefix(k, pTupleObj) {
		return store.Tuple{}, false
	}
	parts := strings.SplitN(k[len(pTupleObj):], sep, 3)
	if len(parts) != 3 {
		return store.Tuple{}, false
	}
	return store.Tuple{Object: parts[0], Relation: parts[1], Subject: parts[2]}, true
}

type tupleOp struct {
	t   store.Tuple
	put bool
}

// netTupleOps is what a WriteTuples call does, one op per tuple: the
// deletes of tuples not also added, then the adds (the last add of a
// tuple wins). etcd refuses two operations on one key in a transaction,
// and this is the call's effect anyway: deletes happen before adds.
func netTupleOps(add, del []store.Tuple) []tupleOp {
	last := make(map[string]int, len(add))
	for i, t := range add {
		last[t.String()] = i
	}
	ops := make([]tupleOp, 0, len(add)+len(del))
	seen := make(map[string]bool, len(del))
	for _, t := range del {
		if k := t.String(); !seen[k] {
			seen[k] = true
			if _, added := last[k]; !added {
				ops = append(ops, tupleOp{t: t})
			}
		}
	}
	for i, t := range add {
		if last[t.String()] == i {
			ops = append(ops, tupleOp{t: t, put: true})
		}
	}
	return ops
}

// WriteTuples deletes del then adds add. A call of up to tuplesPerTxn
// distinct tuples is one transaction; a larger one is several, committed
// in order, each atomic (a failure between them leaves a prefix applied).
func (s *Store) WriteTuples(ctx context.Context, add, del []store.Tuple) error {
	for _, t := range del {
		if err := checkTuple(t); err != nil {
			return err
		}
	}
	vals := make(map[string]string, len(add))
	for _, t := range add {
		if err := checkTuple(t); err != nil {
			return err
		}
		v, err := encodeTupleValue(t)
		if err != nil {
			return err
		}
		vals[t.String()] = v
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ops := netTupleOps(add, del)
	for len(ops) > 0 {
		chunk := ops[:min(len(ops), tuplesPerTxn)]
		ops = ops[len(chunk):]
		txn := make([]clientv3.Op, 0, 2*len(chunk))
		for _, o := range chunk {
			if o.put {
				v := vals[o.t.String()]
				txn = append(txn, clientv3.OpPut(s.k(objKey(o.t)), v), clientv3.OpPut(s.k(subKey(o.t)), v))
			} else {
				txn = append(txn, clientv3.OpDelete(s.k(objKey(o.t))), clientv3.OpDelete(s.k(subKey(o.t))))
			}
		}
		if _, err := s.cli.Txn(ctx).Then(txn...).Commit(); err != nil {
			return fmt.Errorf("etcd: write tuples: %w", err)
		}
	}
	return nil
}

// tupleScan returns the live tuples under the role prefix p; parse turns
// a key (without the store prefix and p's 3-byte role) into a tuple.
func (s *Store) tupleScan(ctx context.Context, p string, parse func(k string) (store.Tuple, bool)) ([]store.Tuple, error) {
	now := s.clock()
	var out []store.Tuple
	err := s.scan(ctx, p, func(k string, v []byte, _ int64) error {
		var val store.Tuple
		if err := decodeTupleValue(v, &val); err != nil {
			return err
		}
		// Hidden from the instant of expiry: no sweeper is waited for.
		if val.Expired(now) {
			return nil
		}
		t, ok := parse(k[3:])
		if !ok {
			return fmt.Errorf("etcd: malformed tuple key %q", k)
		}
		t.Expires, t.Condition, t.Context = val.Expires, val.Condition, val.Context
		out = append(out, t)
		return nil
	})
	return out, err
}

func split3(k string) (a, b, c string, ok bool) {
	parts := strings.SplitN(k, sep, 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func parseObj(k string) (store.Tuple, bool) {
	o, r, s, ok := split3(k)
	return store.Tuple{Object: o, Relation: r, Subject: s}, ok
}

func parseSub(k string) (store.Tuple, bool) {
	s, o, r, ok := split3(k)
	return store.Tuple{Object: o, Relation: r, Subject: s}, ok
}

// TuplesByObject returns the live tuples on object (with relation, unless
// relation is ""): one prefix range of the object index.
func (s *Store) TuplesByObject(ctx context.Context, object, relation string) ([]store.Tuple, error) {
	if err := checkName("tuple object", object); err != nil {
		return nil, err
	}
	if strings.Contains(relation, sep) {
		return nil, fmt.Errorf("etcd: tuple relation %q contains NUL", relation)
	}
	p := pTupleObj + object + sep
	if relation != "" {
		p += relation + sep
	}
	return s.tupleScan(ctx, p, parseObj)
}

// TuplesBySubject returns the live tuples of subject on objects of type
// objectType (every type if ""): one prefix range of the subject index.
func (s *Store) TuplesBySubject(ctx context.Context, subject, objectType string) ([]store.Tuple, error) {
	if err := checkName("tuple subject", subject); err != nil {
		return nil, err
	}
	if strings.ContainsAny(objectType, sep+":") {
		return nil, fmt.Errorf("etcd: bad object type %q", objectType)
	}
	p := pTupleSub + subject + sep
	if objectType != "" {
		p += objectType + ":"
	}
	return s.tupleScan(ctx, p, parseSub)
}

// ListTuples returns every live tuple, ordered by object.
func (s *Store) ListTuples(ctx context.Context) ([]store.Tuple, error) {
	return s.tupleScan(ctx, pTupleObj, parseObj)
}

// PurgeExpiredTuples deletes the index entries of tuples expired at the
// Clock's now and returns how many it removed. Each deletion compares the
// stored expiry, so a tuple re-granted since the scan survives.
func (s *Store) PurgeExpiredTuples(ctx context.Context) (int, error) {
	now := s.clock()
	type dead struct {
		t   store.Tuple
		val []byte
	}
	var all []dead
	err := s.scan(ctx, pTupleObj, func(k string, v []byte, _ int64) error {
		var val store.Tuple
		if err := decodeTupleValue(v, &val); err != nil || !val.Expired(now) {
			return err
		}
		t, ok := parseObj(k[3:])
		if !ok {
			return fmt.Errorf("etcd: malformed tuple key %q", k)
		}
		all = append(all, dead{t, bytes.Clone(v)})
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range all {
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(s.k(objKey(d.t))), "=", string(d.val))).
			Then(clientv3.OpDelete(s.k(objKey(d.t))), clientv3.OpDelete(s.k(subKey(d.t)))).Commit()
		if err != nil {
			return n, fmt.Errorf("etcd: purge tuples: %w", err)
		}
		if tr.Succeeded {
			n++
		}
	}
	return n, nil
}
