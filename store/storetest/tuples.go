package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func tp(object, relation, subject string) store.Tuple {
	return store.Tuple{Object: object, Relation: relation, Subject: subject}
}

func byObject(t *testing.T, s store.Store, object, relation string) []string {
	t.Helper()
	ts, err := s.TuplesByObject(bg, object, relation)
	must(t, err, fmt.Sprintf("TuplesByObject(%q, %q)", object, relation))
	return normTuples(ts)
}

func bySubject(t *testing.T, s store.Store, subject, objectType string) []string {
	t.Helper()
	ts, err := s.TuplesBySubject(bg, subject, objectType)
	must(t, err, fmt.Sprintf("TuplesBySubject(%q, %q)", subject, objectType))
	return normTuples(ts)
}

func listAll(t *testing.T, s store.Store) []string {
	t.Helper()
	ts, err := s.ListTuples(bg)
	must(t, err, "ListTuples")
	return normTuples(ts)
}

func testTupleIndexes(t *testing.T, s store.Store, _ *Clock) {
	a1 := tp("resource:web-1", "act", "user:alice")
	a2 := tp("resource:web-1", "view", "user:alice")
	a3 := tp("resource:web-1", "act", "group:ops#member")
	// Look-alikes: names that are prefixes of one another must never leak
	// into each other's answers, or a grant on one would grant the other.
	b1 := tp("resource:web-10", "act", "user:al")
	b2 := tp("resourcex:web-1", "act", "user:alice")
	b3 := tp("res:web-1", "act", "user:alice")
	c1 := tp("project:p1", "member", "user:alice")
	c2 := tp("group:ops", "member", "user:bob")
	c3 := tp("resource:web-1", "actor", "user:carol")
	all := []store.Tuple{a1, a2, a3, b1, b2, b3, c1, c2, c3}
	must(t, s.WriteTuples(bg, all, nil), "WriteTuples")

	equal(t, "by object, every relation", byObject(t, s, "resource:web-1", ""), tupleStrings(a1, a2, a3, c3))
	equal(t, "by object and relation", byObject(t, s, "resource:web-1", "act"), tupleStrings(a1, a3))
	equal(t, "by object, relation prefix", byObject(t, s, "resource:web-1", "ac"), tupleStrings())
	equal(t, "by object web-10", byObject(t, s, "resource:web-10", ""), tupleStrings(b1))
	equal(t, "by object missing", byObject(t, s, "resource:web", ""), tupleStrings())

	equal(t, "by subject, every type", bySubject(t, s, "user:alice", ""), tupleStrings(a1, a2, b2, b3, c1))
	equal(t, "by subject and type", bySubject(t, s, "user:alice", "resource"), tupleStrings(a1, a2))
	equal(t, "by subject, type res", bySubject(t, s, "user:alice", "res"), tupleStrings(b3))
	equal(t, "by subject user:al", bySubject(t, s, "user:al", ""), tupleStrings(b1))
	equal(t, "by userset subject", bySubject(t, s, "group:ops#member", "resource"), tupleStrings(a3))
	equal(t, "by subject group:ops", bySubject(t, s, "group:ops", ""), tupleStrings())
	equal(t, "ListTuples", listAll(t, s), tupleStrings(all...))

	for _, bad := range []store.Tuple{
		tp("", "act", "user:a"), tp("resource:x", "", "user:a"), tp("resource:x", "act", ""),
		tp("noType", "act", "user:a"), tp(":id", "act", "user:a"), tp("resource:", "act", "user:a"),
	} {
		wantErr(t, s.WriteTuples(bg, []store.Tuple{bad}, nil), "WriteTuples(invalid "+bad.String()+")")
	}
	equal(t, "ListTuples after invalid writes", listAll(t, s), tupleStrings(all...))
}

func testTupleExpiry(t *testing.T, s store.Store, clock *Clock) {
	at := Epoch.Add(time.Hour)
	temp := tp("resource:web-1", "act", "user:alice")
	temp.Expires = at
	perm := tp("resource:web-1", "act", "user:bob")
	past := tp("resource:web-1", "view", "user:alice")
	past.Expires = Epoch.Add(-time.Nanosecond)
	must(t, s.WriteTuples(bg, []store.Tuple{temp, perm, past}, nil), "WriteTuples")

	// An already expired grant is invisible from the start.
	equal(t, "by object at start", byObject(t, s, "resource:web-1", ""), tupleStrings(temp, perm))
	equal(t, "by subject at start", bySubject(t, s, "user:alice", "resource"), tupleStrings(temp))
	equal(t, "list at start", listAll(t, s), tupleStrings(temp, perm))

	clock.Set(at.Add(-time.Nanosecond))
	equal(t, "by object 1ns before expiry", byObject(t, s, "resource:web-1", "act"), tupleStrings(temp, perm))

	// From the instant of expiry on, no read may return it: no sweeper
	// runs, so the backend must filter at read time.
	clock.Set(at)
	equal(t, "by object at expiry", byObject(t, s, "resource:web-1", "act"), tupleStrings(perm))
	equal(t, "by object (all relations) at expiry", byObject(t, s, "resource:web-1", ""), tupleStrings(perm))
	equal(t, "by subject at expiry", bySubject(t, s, "user:alice", ""), tupleStrings())
	equal(t, "list at expiry", listAll(t, s), tupleStrings(perm))

	// Re-adding replaces the expiry, extending the grant...
	temp.Expires = at.Add(time.Hour)
	must(t, s.WriteTuples(bg, []store.Tuple{temp}, nil), "WriteTuples(extend)")
	equal(t, "by subject after extend", bySubject(t, s, "user:alice", "resource"), tupleStrings(temp))
	// ...or making it permanent.
	clock.Advance(30 * time.Minute)
	temp.Expires = time.Time{}
	must(t, s.WriteTuples(bg, []store.Tuple{temp}, nil), "WriteTuples(permanent)")
	clock.Advance(100 * 365 * 24 * time.Hour)
	equal(t, "by object far later", byObject(t, s, "resource:web-1", "act"), tupleStrings(temp, perm))

	// And a permanent tuple can be made temporary again (shortened).
	temp.Expires = clock.Now().Add(time.Minute)
	must(t, s.WriteTuples(bg, []store.Tuple{temp}, nil), "WriteTuples(shorten)")
	clock.Advance(time.Minute)
	equal(t, "by object after shortened expiry", byObject(t, s, "resource:web-1", "act"), tupleStrings(perm))
}

func testTupleWriteAtomic(t *testing.T, s store.Store, _ *Clock) {
	a := tp("resource:web-1", "act", "user:alice")
	b := tp("resource:web-1", "act", "user:bob")
	c := tp("resource:web-2", "act", "user:carol")
	must(t, s.WriteTuples(bg, []store.Tuple{a, c}, nil), "WriteTuples(a, c)")

	// Delete then add in one call: a swap.
	must(t, s.WriteTuples(bg, []store.Tuple{b}, []store.Tuple{a}), "WriteTuples(+b -a)")
	equal(t, "after swap", listAll(t, s), tupleStrings(b, c))
	equal(t, "subject index after swap", bySubject(t, s, "user:alice", ""), tupleStrings())

	// Deletes happen before adds, so a tuple in both ends up present.
	must(t, s.WriteTuples(bg, []store.Tuple{c}, []store.Tuple{c}), "WriteTuples(+c -c)")
	equal(t, "after delete+add of the same tuple", listAll(t, s), tupleStrings(b, c))

	// Deleting a missing tuple is not an error.
	must(t, s.WriteTuples(bg, nil, []store.Tuple{tp("resource:none", "act", "user:x")}), "WriteTuples(-missing)")

	// An invalid tuple fails the whole call: neither the valid add nor the
	// delete may be applied.
	d := tp("resource:web-3", "act", "user:dave")
	err := s.WriteTuples(bg, []store.Tuple{d, tp("", "act", "user:eve")}, []store.Tuple{b})
	wantErr(t, err, "WriteTuples with one invalid tuple")
	equal(t, "after failed write", listAll(t, s), tupleStrings(b, c))
	equal(t, "subject index after failed write", bySubject(t, s, "user:dave", ""), tupleStrings())

	// Deletion removes both index entries.
	must(t, s.WriteTuples(bg, nil, []store.Tuple{b, c}), "WriteTuples(-b -c)")
	equal(t, "subject index after delete", bySubject(t, s, "user:bob", ""), tupleStrings())
	equal(t, "object index after delete", byObject(t, s, "resource:web-2", ""), tupleStrings())
}

func testTupleBulk(t *testing.T, s store.Store, clock *Clock) {
	const n = 3000
	var add []store.Tuple
	for i := 0; i < n; i++ {
		x := tp(fmt.Sprintf("resource:r%d", i%100), "act", fmt.Sprintf("user:u%d", i))
		if i%2 == 1 {
			x.Expires = Epoch.Add(time.Minute)
		}
		add = append(add, x)
	}
	must(t, s.WriteTuples(bg, add, nil), "WriteTuples(bulk)")
	equal(t, "bulk list", len(listAll(t, s)), n)
	equal(t, "bulk by object", len(byObject(t, s, "resource:r7", "act")), n/100)
	equal(t, "bulk by subject", len(bySubject(t, s, "user:u2999", "resource")), 1)
	clock.Advance(time.Minute)
	equal(t, "bulk list after half expired", len(listAll(t, s)), n/2)
	// r7 only has odd (temporary) grants, r6 only permanent ones.
	equal(t, "r7 after expiry", len(byObject(t, s, "resource:r7", "act")), 0)
	equal(t, "r6 after expiry", len(byObject(t, s, "resource:r6", "")), n/100)
	equal(t, "odd subject expired", len(bySubject(t, s, "user:u2999", "")), 0)
}

// testTupleConditions: a conditional tuple keeps its condition and its
// context (every JSON kind of value) through every read, beside an expiry
// or without one; re-adding replaces them; an unconditional tuple beside
// it reads as before.
func testTupleConditions(t *testing.T, s store.Store, clock *Clock) {
	shift := tp("group:oncall", "member", "user:carol")
	shift.Condition = "on_shift"
	shift.Context = map[string]any{
		"start": "2025-01-01T08:00:00Z", "end": "2025-01-01T16:00:00Z",
		"cidrs": []any{"10.0.0.0/8", "192.168.0.0/16"}, "max": 3.5, "strict": true,
		"labels": map[string]any{"team": "sre", "n": 2.0},
	}
	bare := tp("resource:web", "act", "group:oncall#member")
	bare.Condition = "office" // a condition with no context: the request supplies it all
	temp := tp("resource:db", "act", "user:carol")
	temp.Condition, temp.Context = "office", map[string]any{"cidr": "10.1.0.0/16"}
	temp.Expires = Epoch.Add(time.Hour)
	plain := tp("resource:db", "act", "user:dave")
	all := []store.Tuple{shift, bare, temp, plain}
	must(t, s.WriteTuples(bg, all, nil), "WriteTuples(conditional)")

	equal(t, "by object", byObject(t, s, "group:oncall", "member"), tupleStrings(shift))
	equal(t, "by object, usersets", byObject(t, s, "resource:web", "act"), tupleStrings(bare))
	equal(t, "by subject", bySubject(t, s, "user:carol", ""), tupleStrings(shift, temp))
	equal(t, "list", listAll(t, s), tupleStrings(all...))
	// The values come back as JSON decodes them, so that the engine reads
	// the same from every backend.
	ts, err := s.TuplesByObject(bg, "group:oncall", "member")
	must(t, err, "TuplesByObject")
	if len(ts) != 1 || !reflect.DeepEqual(ts[0].Context, shift.Context) || ts[0].Condition != "on_shift" {
		t.Fatalf("conditional tuple read back as %+v, want %+v", ts, shift)
	}

	// Re-adding replaces the condition and its context...
	shift.Context = map[string]any{"start": "2025-02-01T08:00:00Z"}
	must(t, s.WriteTuples(bg, []store.Tuple{shift}, nil), "WriteTuples(new context)")
	equal(t, "after new context", bySubject(t, s, "user:carol", "group"), tupleStrings(shift))
	// ...and re-adding without one makes the tuple unconditional.
	shift.Condition, shift.Context = "", nil
	must(t, s.WriteTuples(bg, []store.Tuple{shift}, nil), "WriteTuples(unconditional)")
	equal(t, "after dropping the condition", byObject(t, s, "group:oncall", ""), tupleStrings(shift))

	// A conditional tuple expires like any other.
	clock.Set(temp.Expires)
	equal(t, "by subject after expiry", bySubject(t, s, "user:carol", "resource"), tupleStrings())
	equal(t, "by object after expiry", byObject(t, s, "resource:db", ""), tupleStrings(plain))

	// Deleting names only the key: the condition is not part of it.
	must(t, s.WriteTuples(bg, nil, []store.Tuple{tp("resource:web", "act", "group:oncall#member")}), "WriteTuples(-bare)")
	equal(t, "after delete", byObject(t, s, "resource:web", ""), tupleStrings())

	// A context without a condition is refused, and writes nothing.
	bad := tp("resource:x", "act", "user:eve")
	bad.Context = map[string]any{"a": "b"}
	wantErr(t, s.WriteTuples(bg, []store.Tuple{bad}, nil), "WriteTuples(context without condition)")
	equal(t, "after refused write", byObject(t, s, "resource:x", ""), tupleStrings())
}
