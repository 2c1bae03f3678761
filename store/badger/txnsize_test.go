package badger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// TestWriteTuplesLargerThanOneTxn exercises the documented chunking path:
// a call whose index entries exceed one transaction still lands whole.
func TestWriteTuplesLargerThanOneTxn(t *testing.T) {
	s, err := Open("", Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Each tuple is two index entries, so this is twice the entry limit.
	n := int(s.db.MaxBatchCount())
	add := make([]store.Tuple, n)
	for i := range add {
		add[i] = store.Tuple{Object: fmt.Sprintf("resource:r%d", i%1000), Relation: "act", Subject: fmt.Sprintf("user:u%d", i)}
	}
	ctx := context.Background()
	if err := s.WriteTuples(ctx, add, nil); err != nil {
		t.Fatal(err)
	}
	ts, err := s.ListTuples(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != n {
		t.Fatalf("%d tuples stored, want %d", len(ts), n)
	}
	ts, err = s.TuplesBySubject(ctx, fmt.Sprintf("user:u%d", n-1), "resource")
	if err != nil || len(ts) != 1 {
		t.Fatalf("last tuple by subject: %v, %v", ts, err)
	}
}

func quietStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), InMemory: dir == ""})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTxnLimitsFitOneTransaction proves TxnLimits against badger's own
// accounting: a transaction at both limits, shaped either way (maxOps
// small events, or few large ones), commits as one, on disk and in memory.
// If badger counted more than eventTxnLimits assumes, this fails.
func TestTxnLimitsFitOneTransaction(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s := quietStore(t, dir)
		maxBytes, maxOps := s.TxnLimits()
		if maxBytes < 512<<10 || maxOps < 1024 {
			// The audit log bounds one event to 64 KiB of text (up to
			// 6x that as JSON): it must always fit.
			t.Fatalf("TxnLimits() = %d bytes, %d ops: too small for the audit log", maxBytes, maxOps)
		}
		seq := uint64(1)
		for _, shape := range []struct{ n, size int }{
			{maxOps, maxBytes / maxOps}, // as many entries as allowed
			{4, maxBytes / 4},           // few large values
			{1, maxBytes},               // one value at the limit
		} {
			txn := s.db.NewTransaction(true)
			for i := 0; i < shape.n; i++ {
				if err := txn.Set(eventKey(seq), make([]byte, shape.size)); err != nil {
					t.Fatalf("%s: %d values of %d bytes: Set %d: %v", dir, shape.n, shape.size, i, err)
				}
				seq++
			}
			if err := txn.Commit(); err != nil {
				t.Fatalf("%s: %d values of %d bytes: Commit: %v", dir, shape.n, shape.size, err)
			}
		}
	}
}

func smallEvents(from, n int, detail string) []store.Event {
	evs := make([]store.Event, n)
	for i := range evs {
		seq := uint64(from + i)
		evs[i] = store.Event{Seq: seq, Time: time.Unix(int64(seq), 0).UTC(), Actor: "user:a", Action: "x",
			Details: map[string]string{"d": detail}, PrevHash: "p", Hash: "h"}
	}
	return evs
}

// TestAppendEventsSplitsWhatBadgerRefuses: with TxnLimits wrongly large
// (as if badger's accounting changed), a call badger refuses as one
// transaction still lands whole, split where badger said stop.
func TestAppendEventsSplitsWhatBadgerRefuses(t *testing.T) {
	s := quietStore(t, "")
	s.txnBytes, s.txnOps = 1<<40, 1<<30
	ctx := context.Background()
	evs := smallEvents(1, 20000, strings.Repeat("y", 200)) // ~6 MB, 20,000 entries
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	last, ok, err := s.LastEvent(ctx)
	if err != nil || !ok || last.Seq != 20000 {
		t.Fatalf("LastEvent = %d, %v, %v", last.Seq, ok, err)
	}
	n := 0
	if err := s.ScanEvents(ctx, 0, func(e store.Event) error {
		if n++; e.Seq != uint64(n) {
			return fmt.Errorf("position %d has seq %d", n, e.Seq)
		}
		return nil
	}); err != nil || n != 20000 {
		t.Fatalf("scan: %d events, %v", n, err)
	}
}

// TestAppendEventsRefusesAnOversizedEventWhole: an event no transaction
// holds fails the call with store.ErrTxnTooBig before anything is written,
// so the audit log may retry the call's other events.
func TestAppendEventsRefusesAnOversizedEventWhole(t *testing.T) {
	s := quietStore(t, "")
	ctx := context.Background()
	maxBytes, _ := s.TxnLimits()
	if err := s.AppendEvents(ctx, smallEvents(1, 1, "a")); err != nil {
		t.Fatal(err)
	}
	evs := smallEvents(2, 3000, strings.Repeat("b", 1000)) // several transactions' worth
	evs[2500].Details["d"] = strings.Repeat("c", maxBytes)
	err := s.AppendEvents(ctx, evs)
	if !errors.Is(err, store.ErrTxnTooBig) || !errors.Is(err, bdb.ErrTxnTooBig) {
		t.Fatalf("AppendEvents with an oversized event: %v, want store.ErrTxnTooBig", err)
	}
	last, _, err := s.LastEvent(ctx)
	if err != nil || last.Seq != 1 {
		t.Fatalf("after the refused call LastEvent = %d, %v; want 1 (nothing written)", last.Seq, err)
	}
	n := 0
	_ = s.ScanEvents(ctx, 0, func(store.Event) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d events stored after the refused call, want 1", n)
	}
	evs[2500].Details["d"] = "small again"
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}
