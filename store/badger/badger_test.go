package badger_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/storetest"
)

var ctx = context.Background()

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestSuiteOnDisk(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		s, err := badger.Open(t.TempDir(), badger.Options{Clock: clock, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSuiteInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		s, err := badger.Open("", badger.Options{Clock: clock, Logger: quiet, InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func open(t *testing.T, dir string, clock store.Clock) *badger.Store {
	t.Helper()
	s, err := badger.Open(dir, badger.Options{Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func event(seq uint64) store.Event {
	return store.Event{Seq: seq, Time: storetest.Epoch.Add(time.Duration(seq) * time.Second),
		Actor: "user:alice", Action: "forward.open", Details: map[string]string{"n": fmt.Sprint(seq)},
		PrevHash: fmt.Sprintf("p%d", seq), Hash: fmt.Sprintf("h%d", seq)}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(storetest.Epoch)
	s := open(t, dir, clock.Now)
	must(t, s.PutUser(ctx, store.User{Name: "alice", Created: storetest.Epoch}))
	must(t, s.PutKey(ctx, store.Key{Fingerprint: "SHA256:a", User: "alice"}))
	must(t, s.PutSecret(ctx, "host_key", []byte("secret")))
	temp := store.Tuple{Object: "resource:web-1", Relation: "act", Subject: "user:alice", Expires: storetest.Epoch.Add(time.Hour)}
	must(t, s.WriteTuples(ctx, []store.Tuple{temp}, nil))
	must(t, s.AppendEvents(ctx, []store.Event{event(1), event(2), event(3)}))
	must(t, s.Close())
	must(t, s.Close()) // idempotent

	s = open(t, dir, clock.Now)
	defer s.Close()
	last, ok, err := s.LastEvent(ctx)
	must(t, err)
	if !ok || last.Seq != 3 || last.Hash != "h3" || last.Details["n"] != "3" {
		t.Fatalf("LastEvent after reopen = %+v, %v", last, ok)
	}
	// The gap check must use the reloaded seq, not start again from 1.
	if err := s.AppendEvents(ctx, []store.Event{event(1)}); err == nil {
		t.Fatal("append of seq 1 after reopen accepted")
	}
	must(t, s.AppendEvents(ctx, []store.Event{event(4)}))
	ks, err := s.KeysOf(ctx, "alice")
	must(t, err)
	if len(ks) != 1 {
		t.Fatalf("KeysOf after reopen: %d keys", len(ks))
	}
	sec, err := s.GetSecret(ctx, "host_key")
	must(t, err)
	if string(sec) != "secret" {
		t.Fatalf("secret after reopen = %q", sec)
	}
	ts, err := s.TuplesBySubject(ctx, "user:alice", "resource")
	must(t, err)
	if len(ts) != 1 || !ts[0].Expires.Equal(temp.Expires) {
		t.Fatalf("tuples after reopen = %+v", ts)
	}
	clock.Advance(time.Hour)
	ts, err = s.TuplesBySubject(ctx, "user:alice", "resource")
	must(t, err)
	if len(ts) != 0 {
		t.Fatalf("expired tuple visible after reopen: %+v", ts)
	}
}

func TestLastEventEmptyAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	must(t, s.PutUser(ctx, store.User{Name: "alice"}))
	must(t, s.Close())
	s = open(t, dir, nil)
	defer s.Close()
	if _, ok, err := s.LastEvent(ctx); ok || err != nil {
		t.Fatalf("LastEvent on a log with no events: ok=%v err=%v", ok, err)
	}
	must(t, s.AppendEvents(ctx, []store.Event{event(1)}))
}

func TestOpenTwiceFails(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	defer s.Close()
	// Two processes on one data dir would break the gap-free sequence.
	if s2, err := badger.Open(dir, badger.Options{Logger: quiet}); err == nil {
		s2.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
}

func TestTamperEventForTest(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	must(t, s.AppendEvents(ctx, []store.Event{event(1), event(2)}))
	must(t, s.TamperEventForTest(1, func(e *store.Event) { e.Actor = "user:mallory" }))
	must(t, s.TamperEventForTest(2, func(e *store.Event) { e.Seq = 99 }))
	if err := s.TamperEventForTest(7, func(*store.Event) {}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tampering a missing event: %v", err)
	}
	must(t, s.Close())

	s = open(t, dir, nil)
	defer s.Close()
	var got []store.Event
	must(t, s.ScanEvents(ctx, 0, func(e store.Event) error { got = append(got, e); return nil }))
	if len(got) != 2 || got[0].Actor != "user:mallory" || got[0].Hash != "h1" || got[1].Seq != 99 || got[1].Hash != "h2" {
		t.Fatalf("after tampering: %+v", got)
	}
}

func TestPurgeExpiredTuples(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	s, err := badger.Open("", badger.Options{Clock: clock.Now, Logger: quiet, InMemory: true})
	must(t, err)
	defer s.Close()
	var add []store.Tuple
	for i := 0; i < 10; i++ {
		tu := store.Tuple{Object: fmt.Sprintf("resource:r%d", i), Relation: "act", Subject: "user:a"}
		if i < 4 {
			tu.Expires = storetest.Epoch.Add(time.Minute)
		}
		add = append(add, tu)
	}
	must(t, s.WriteTuples(ctx, add, nil))
	n, err := s.PurgeExpiredTuples(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("purged %d live tuples", n)
	}
	clock.Advance(time.Minute)
	n, err = s.PurgeExpiredTuples(ctx)
	must(t, err)
	if n != 4 {
		t.Fatalf("purged %d, want 4", n)
	}
	// Even with the clock moved back, purged tuples are gone from both indexes.
	clock.Set(storetest.Epoch)
	ts, err := s.TuplesBySubject(ctx, "user:a", "")
	must(t, err)
	if len(ts) != 6 {
		t.Fatalf("%d tuples by subject after purge, want 6", len(ts))
	}
	ts, err = s.ListTuples(ctx)
	must(t, err)
	if len(ts) != 6 {
		t.Fatalf("%d tuples after purge, want 6", len(ts))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
