package policy

import (
	"context"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

// memReader is an in-memory TupleReader indexed both ways, hiding expired
// tuples like a store would.
type memReader struct {
	byObject  map[nodeKey][]store.Tuple
	bySubject map[lookupKey][]store.Tuple
	expiring  bool // any tuple has an expiry: filter on read
	now       func() time.Time
}

func newMemReader(tuples []store.Tuple) *memReader {
	r := &memReader{byObject: map[nodeKey][]store.Tuple{}, bySubject: map[lookupKey][]store.Tuple{}, now: time.Now}
	for _, t := range tuples {
		ko := nodeKey{t.Object, t.Relation}
		r.byObject[ko] = append(r.byObject[ko], t)
		ks := lookupKey{t.Subject, typeOf(t.Object)}
		r.bySubject[ks] = append(r.bySubject[ks], t)
		if !t.Expires.IsZero() {
			r.expiring = true
		}
	}
	return r
}

func (r *memReader) live(ts []store.Tuple) []store.Tuple {
	if !r.expiring {
		return ts
	}
	now := r.now()
	out := make([]store.Tuple, 0, len(ts))
	for _, t := range ts {
		if !t.Expired(now) {
			out = append(out, t)
		}
	}
	return out
}

func (r *memReader) TuplesByObject(_ context.Context, object, relation string) ([]store.Tuple, error) {
	return r.live(r.byObject[nodeKey{object, relation}]), nil
}

func (r *memReader) TuplesBySubject(_ context.Context, subject, objectType string) ([]store.Tuple, error) {
	return r.live(r.bySubject[lookupKey{subject, objectType}]), nil
}

func newMemReaderT(_ *testing.T, tuples []store.Tuple) TupleReader { return newMemReader(tuples) }

func TestFixtures(t *testing.T) { RunFixtures(t, newMemReaderT) }
