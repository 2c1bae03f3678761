package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sshbastion/bastion/store"
)

func wantConflict(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("%s: got error %v, want store.ErrConflict", what, err)
	}
}

// testEventsConflict: an append whose first seq another writer already
// used is a conflict (the writer re-chains and retries), and writes
// nothing.
func testEventsConflict(t *testing.T, s store.Store, _ *Clock) {
	must(t, s.AppendEvents(bg, mkEvents(1, 3)), "AppendEvents(1..3)")
	wantConflict(t, s.AppendEvents(bg, mkEvents(3, 5)), "AppendEvents(3..5) after 3")
	wantConflict(t, s.AppendEvents(bg, mkEvents(1, 1)), "AppendEvents(1) after 3")
	equal(t, "seqs after conflicts", seqs(scanAll(t, s, 0)), []uint64{1, 2, 3})
	// A gap ahead of the stored end is no conflict: no other writer can
	// explain it.
	if err := s.AppendEvents(bg, mkEvents(5, 5)); err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("AppendEvents(5) after 3: %v, want a gap error that is not a conflict", err)
	}
	must(t, s.AppendEvents(bg, mkEvents(4, 4)), "AppendEvents(4)")
}

func testCheckpoint(t *testing.T, s store.Store, _ *Clock) {
	_, ok, err := s.Checkpoint(bg)
	must(t, err, "Checkpoint(empty)")
	if ok {
		t.Fatal("Checkpoint on a new log: ok = true")
	}
	if _, err := s.DeleteEventsThrough(bg, 1); err == nil {
		t.Fatal("DeleteEventsThrough without a checkpoint succeeded")
	}
	evs := mkEvents(1, 250)
	must(t, s.AppendEvents(bg, evs[:100]), "AppendEvents(1..100)")
	must(t, s.AppendEvents(bg, evs[100:]), "AppendEvents(101..250)")
	none := store.Checkpoint{}
	cp := func(seq uint64) store.Checkpoint {
		return store.Checkpoint{Seq: seq, Hash: fmt.Sprintf("hash-%d", seq), Time: mkEvents(seq, seq)[0].Time, Archived: Epoch}
	}
	wantErr(t, s.PutCheckpoint(bg, none, cp(250)), "checkpoint on the last event")
	wantErr(t, s.PutCheckpoint(bg, none, cp(251)), "checkpoint past the end")
	bad := cp(120)
	bad.Hash = "hash-121"
	wantErr(t, s.PutCheckpoint(bg, none, bad), "checkpoint with another event's hash")
	must(t, s.PutCheckpoint(bg, none, cp(120)), "PutCheckpoint(120)")
	got, ok, err := s.Checkpoint(bg)
	must(t, err, "Checkpoint")
	if !ok || !got.Same(cp(120)) || !got.Time.Equal(cp(120).Time) || !got.Archived.Equal(Epoch) {
		t.Fatalf("Checkpoint = %+v, %v; want %+v", got, ok, cp(120))
	}
	// Two archives from the same checkpoint: the second one loses.
	wantConflict(t, s.PutCheckpoint(bg, none, cp(130)), "PutCheckpoint from a stale previous checkpoint")
	wantErr(t, s.PutCheckpoint(bg, cp(120), cp(110)), "checkpoint moving back")
	wantErr(t, s.PutCheckpoint(bg, cp(120), cp(120)), "checkpoint not moving")

	// Only what the checkpoint covers may be removed.
	if _, err := s.DeleteEventsThrough(bg, 121); err == nil {
		t.Fatal("DeleteEventsThrough past the checkpoint succeeded")
	}
	n, err := s.DeleteEventsThrough(bg, 120)
	must(t, err, "DeleteEventsThrough(120)")
	equal(t, "removed", n, 120)
	stored := seqs(scanAll(t, s, 0))
	equal(t, "first stored after removal", stored[0], uint64(121))
	equal(t, "stored after removal", len(stored), 130)
	n, err = s.DeleteEventsThrough(bg, 120)
	must(t, err, "DeleteEventsThrough(120) again")
	equal(t, "removed again", n, 0)
	last, ok, err := s.LastEvent(bg)
	must(t, err, "LastEvent")
	if !ok || last.Seq != 250 {
		t.Fatalf("LastEvent after removal: %d, %v", last.Seq, ok)
	}
	equal(t, "query after removal", query(t, s, store.EventFilter{Limit: 2}), []uint64{249, 250})
	wantConflict(t, s.AppendEvents(bg, mkEvents(100, 100)), "append of a removed seq")
	must(t, s.AppendEvents(bg, mkEvents(251, 251)), "append after removal")

	// A second round, removing less than the checkpoint allows first (a
	// removal cut short), then the rest.
	must(t, s.PutCheckpoint(bg, cp(120), cp(200)), "PutCheckpoint(200)")
	n, err = s.DeleteEventsThrough(bg, 150)
	must(t, err, "DeleteEventsThrough(150)")
	equal(t, "removed through 150", n, 30)
	n, err = s.DeleteEventsThrough(bg, 200)
	must(t, err, "DeleteEventsThrough(200)")
	equal(t, "removed through 200", n, 50)
	equal(t, "stored after the second round", seqs(scanAll(t, s, 0))[0], uint64(201))
}

// testCheckpointImport: on an empty log, a checkpoint says where the log
// starts (an archived log copied to another store).
func testCheckpointImport(t *testing.T, s store.Store, _ *Clock) {
	start := store.Checkpoint{Seq: 1000, Hash: "hash-1000", Time: Epoch, Archived: Epoch}
	must(t, s.PutCheckpoint(bg, store.Checkpoint{}, start), "PutCheckpoint on an empty log")
	_, ok, err := s.LastEvent(bg)
	must(t, err, "LastEvent")
	if ok {
		t.Fatal("LastEvent after an import: ok = true, no event is stored")
	}
	wantErr(t, s.AppendEvents(bg, mkEvents(1, 1)), "append of seq 1 after an import at 1000")
	wantErr(t, s.PutCheckpoint(bg, start, store.Checkpoint{Seq: 1001, Hash: "x"}), "checkpoint on a log holding no event")
	must(t, s.AppendEvents(bg, mkEvents(1001, 1002)), "AppendEvents(1001..1002)")
	last, ok, err := s.LastEvent(bg)
	must(t, err, "LastEvent")
	if !ok || last.Seq != 1002 {
		t.Fatalf("LastEvent: %d, %v; want 1002", last.Seq, ok)
	}
	equal(t, "stored", seqs(scanAll(t, s, 0)), []uint64{1001, 1002})
}

// testDeleteWhileAppending: removal of archived events and appends at the
// end run at the same time without losing or reviving anything.
func testDeleteWhileAppending(t *testing.T, s store.Store, _ *Clock) {
	must(t, s.AppendEvents(bg, mkEvents(1, 400)), "AppendEvents(1..400)")
	must(t, s.PutCheckpoint(bg, store.Checkpoint{}, store.Checkpoint{Seq: 350, Hash: "hash-350"}), "PutCheckpoint(350)")
	var wg sync.WaitGroup
	wg.Add(2)
	var appendErr, deleteErr error
	var removed int
	go func() {
		defer wg.Done()
		for from := uint64(401); from <= 1400 && appendErr == nil; from += 20 {
			appendErr = s.AppendEvents(bg, mkEvents(from, from+19))
		}
	}()
	go func() {
		defer wg.Done()
		removed, deleteErr = s.DeleteEventsThrough(bg, 350)
	}()
	wg.Wait()
	must(t, appendErr, "appends during removal")
	must(t, deleteErr, "removal during appends")
	equal(t, "removed", removed, 350)
	got := seqs(scanAll(t, s, 0))
	equal(t, "stored count", len(got), 1050)
	for i, seq := range got {
		if seq != uint64(351+i) {
			t.Fatalf("position %d holds seq %d, want %d", i, seq, 351+i)
		}
	}
}
