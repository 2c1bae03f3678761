package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

// changeWait bounds how long the suite waits for one change.
const changeWait = 10 * time.Second

// changeString renders what the suite compares of a change: everything but
// its Rev (which only has to be ordered).
func changeString(c store.Change) string {
	s := c.Kind + " " + c.Key
	if c.Deleted {
		s += " deleted"
	}
	if c.Tuple != nil {
		s += " [" + tupleString(*c.Tuple) + "]"
	}
	return s
}

func nextChange(t *testing.T, ch <-chan store.Change, what string) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the feed closed", what)
		}
		return c
	case <-time.After(changeWait):
		t.Fatalf("%s: no change within %s", what, changeWait)
	}
	return store.Change{}
}

// expectChanges reads len(want) changes and compares them, in order, with
// want; no reset may come. It returns them.
func expectChanges(t *testing.T, ch <-chan store.Change, what string, want ...string) []store.Change {
	t.Helper()
	var got []store.Change
	for i := range want {
		c := nextChange(t, ch, fmt.Sprintf("%s: change %d (%s)", what, i, want[i]))
		if c.Kind == store.KindReset {
			t.Fatalf("%s: change %d is a reset (rev %d), want %q", what, i, c.Rev, want[i])
		}
		if g := changeString(c); g != want[i] {
			t.Fatalf("%s: change %d:\n got  %q\n want %q", what, i, g, want[i])
		}
		if len(got) > 0 && c.Rev < got[len(got)-1].Rev {
			t.Fatalf("%s: change %d has rev %d, after rev %d", what, i, c.Rev, got[len(got)-1].Rev)
		}
		got = append(got, c)
	}
	return got
}

func rev(t *testing.T, s store.Store) uint64 {
	t.Helper()
	r, err := s.Rev(bg)
	must(t, err, "Rev")
	return r
}

func watch(t *testing.T, s store.Store, from uint64) <-chan store.Change {
	t.Helper()
	ctx, cancel := context.WithCancel(bg)
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, from)
	must(t, err, fmt.Sprintf("Watch(%d)", from))
	return ch
}

func testChanges(t *testing.T, s store.Store, _ *Clock) {
	t.Run("EveryKind", func(t *testing.T) { testChangesEveryKind(t, s) })
	t.Run("Replay", func(t *testing.T) { testChangesReplay(t, s) })
	t.Run("ConditionalTuple", func(t *testing.T) { testChangesConditionalTuple(t, s) })
	t.Run("TwoWatchers", func(t *testing.T) { testChangesTwoWatchers(t, s) })
	t.Run("Cancel", func(t *testing.T) { testChangesCancel(t, s) })
}

// testChangesEveryKind: a write of each kind is seen, once committed.
func testChangesEveryKind(t *testing.T, s store.Store) {
	ch := watch(t, s, rev(t, s))

	t1 := tp("resource:web-1", "act", "user:alice")
	t2 := tp("group:ops", "member", "user:bob")
	t2.Expires = Epoch.Add(time.Hour)
	must(t, s.WriteTuples(bg, []store.Tuple{t1, t2}, nil), "WriteTuples")
	cs := expectChanges(t, ch, "WriteTuples(+t1 +t2)",
		"tuple resource:web-1#act@user:alice [resource:web-1#act@user:alice]",
		"tuple group:ops#member@user:bob [group:ops#member@user:bob until "+t2.Expires.Format(time.RFC3339Nano)+"]")
	if cs[0].Rev != cs[1].Rev || cs[0].Rev == 0 {
		t.Fatalf("the tuples of one WriteTuples have revs %d and %d: want one, non-zero", cs[0].Rev, cs[1].Rev)
	}
	// Published after the commit: a read now sees the write.
	equal(t, "tuples when the change arrives", byObject(t, s, "resource:web-1", ""), tupleStrings(t1))
	must(t, s.WriteTuples(bg, nil, []store.Tuple{t1}), "WriteTuples(-t1)")
	cs2 := expectChanges(t, ch, "WriteTuples(-t1)",
		"tuple resource:web-1#act@user:alice deleted [resource:web-1#act@user:alice]")
	if cs2[0].Rev <= cs[0].Rev {
		t.Fatalf("a later write has rev %d, not above %d", cs2[0].Rev, cs[0].Rev)
	}
	equal(t, "tuples when the delete arrives", byObject(t, s, "resource:web-1", ""), tupleStrings())
	// Delete and add of one tuple in one call: it ends present.
	must(t, s.WriteTuples(bg, []store.Tuple{t2}, []store.Tuple{t2}), "WriteTuples(+t2 -t2)")
	expectChanges(t, ch, "WriteTuples(+t2 -t2)",
		"tuple group:ops#member@user:bob [group:ops#member@user:bob until "+t2.Expires.Format(time.RFC3339Nano)+"]")

	m, err := s.AppendModel(bg, store.NewModelVersion("model\n  schema 1.1\n", "alice", "load", 0, Epoch))
	must(t, err, "AppendModel")
	expectChanges(t, ch, "AppendModel", fmt.Sprintf("model %d", m.Version))
	must(t, s.PutSecret(bg, "policy-model", []byte("model")), "PutSecret")
	expectChanges(t, ch, "PutSecret", "secret policy-model")

	must(t, s.PutResource(bg, store.Resource{Name: "web-1", Kind: "ssh", Address: "10.0.0.1:22"}), "PutResource")
	expectChanges(t, ch, "PutResource", "resource web-1")
	_, err = s.GetResource(bg, "web-1")
	must(t, err, "GetResource when the change arrives")
	must(t, s.DeleteResource(bg, "web-1"), "DeleteResource")
	expectChanges(t, ch, "DeleteResource", "resource web-1 deleted")

	must(t, s.PutUser(bg, store.User{Name: "alice", Created: Epoch}), "PutUser")
	expectChanges(t, ch, "PutUser", "user alice")
	must(t, s.PutKey(bg, store.Key{Fingerprint: "SHA256:a1", User: "alice", Added: Epoch}), "PutKey(a1)")
	expectChanges(t, ch, "PutKey(a1)", "key SHA256:a1")
	must(t, s.PutKey(bg, store.Key{Fingerprint: "SHA256:a2", User: "alice", Added: Epoch}), "PutKey(a2)")
	expectChanges(t, ch, "PutKey(a2)", "key SHA256:a2")
	must(t, s.DeleteKey(bg, "SHA256:a1"), "DeleteKey")
	expectChanges(t, ch, "DeleteKey", "key SHA256:a1 deleted")
	must(t, s.DeleteUser(bg, "alice"), "DeleteUser")
	expectChanges(t, ch, "DeleteUser (and its key)", "user alice deleted", "key SHA256:a2 deleted")

	must(t, s.PutSession(bg, store.Session{ID: "s1", User: "bob", State: "open", Opened: Epoch}), "PutSession")
	expectChanges(t, ch, "PutSession", "session s1")
	must(t, s.RevokeCert(bg, store.CertRevocation{Serial: 42, At: Epoch}), "RevokeCert")
	expectChanges(t, ch, "RevokeCert", "cert 42")
	if _, ok, err := s.CertRevoked(bg, 42); err != nil || !ok {
		t.Fatalf("CertRevoked(42) when the change arrives: %v, %v", ok, err)
	}
	must(t, s.PutAccessRequest(bg, store.AccessRequest{ID: "r-1", User: "bob", State: "pending", Created: Epoch}), "PutAccessRequest")
	expectChanges(t, ch, "PutAccessRequest", "request r-1")

	// Audit events and recordings are no changes: the next one is bob.
	must(t, s.AppendEvents(bg, mkEvents(1, 3)), "AppendEvents")
	must(t, s.AppendRecording(bg, "s1", []byte("chunk")), "AppendRecording")
	must(t, s.PutUser(bg, store.User{Name: "bob", Created: Epoch}), "PutUser(bob)")
	last := expectChanges(t, ch, "PutUser(bob) after events and a recording", "user bob")
	if r := rev(t, s); r < last[0].Rev {
		t.Fatalf("Rev() = %d, below the last change's %d", r, last[0].Rev)
	}
}

// testChangesReplay: watching from a past revision replays what came
// after it; from a future one is refused.
func testChangesReplay(t *testing.T, s store.Store) {
	r0 := rev(t, s)
	for _, n := range []string{"r1", "r2", "r3"} {
		must(t, s.PutResource(bg, store.Resource{Name: n, Kind: "tcp"}), "PutResource "+n)
	}
	cs := expectChanges(t, watch(t, s, r0), "replay from before three writes",
		"resource r1", "resource r2", "resource r3")
	expectChanges(t, watch(t, s, cs[0].Rev), "replay from the first write's rev", "resource r2", "resource r3")
	ch := watch(t, s, cs[2].Rev)
	must(t, s.PutResource(bg, store.Resource{Name: "r4", Kind: "tcp"}), "PutResource r4")
	expectChanges(t, ch, "watch from the last rev", "resource r4")

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	if _, err := s.Watch(ctx, rev(t, s)+1000); err == nil {
		t.Fatal("Watch from a revision the store has not reached: no error")
	}
}

// testChangesTwoWatchers: each of two watchers sees every change, in order.
func testChangesTwoWatchers(t *testing.T, s store.Store) {
	r0 := rev(t, s)
	a, b := watch(t, s, r0), watch(t, s, r0)
	const n = 50
	want := make([]string, n)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := s.PutSession(bg, store.Session{ID: fmt.Sprintf("w%02d", i), State: "open"}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range want {
		want[i] = fmt.Sprintf("session w%02d", i)
	}
	ca := expectChanges(t, a, "first watcher", want...)
	cb := expectChanges(t, b, "second watcher", want...)
	must(t, <-done, "PutSession")
	for i := 1; i < n; i++ {
		if ca[i].Rev <= ca[i-1].Rev || ca[i].Rev != cb[i].Rev {
			t.Fatalf("change %d: revs %d (after %d) and %d: want increasing and the same on both", i, ca[i].Rev, ca[i-1].Rev, cb[i].Rev)
		}
	}
}

// testChangesCancel: cancelling the context closes the channel.
func testChangesCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(bg)
	ch, err := s.Watch(ctx, rev(t, s))
	must(t, err, "Watch")
	must(t, s.PutUser(bg, store.User{Name: "carol"}), "PutUser")
	expectChanges(t, ch, "before cancel", "user carol")
	cancel()
	deadline := time.After(changeWait)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the feed is still open %s after its context was cancelled", changeWait)
		}
	}
}

// testChangesConditionalTuple: the change of a conditional tuple carries
// its condition and context, so that replicas' caches see what was
// written.
func testChangesConditionalTuple(t *testing.T, s store.Store) {
	ch := watch(t, s, rev(t, s))
	c := tp("resource:db", "act", "user:carol")
	c.Condition, c.Context = "office", map[string]any{"cidr": "10.0.0.0/8"}
	c.Expires = Epoch.Add(time.Hour)
	must(t, s.WriteTuples(bg, []store.Tuple{c}, nil), "WriteTuples(conditional)")
	expectChanges(t, ch, "WriteTuples(conditional)",
		"tuple resource:db#act@user:carol [resource:db#act@user:carol until "+c.Expires.Format(time.RFC3339Nano)+
			` with office {"cidr":"10.0.0.0/8"}]`)
}
