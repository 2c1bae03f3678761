package etcd_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
)

// chained returns n events after seq and prev, hashed with a stand-in (the
// store checks seqs, not hashes).
func chained(seq uint64, prev string, n int) []store.Event {
	evs := make([]store.Event, n)
	for i := range evs {
		seq++
		evs[i] = store.Event{Seq: seq, Action: "test", PrevHash: prev, Hash: fmt.Sprintf("h%d", seq)}
		prev = evs[i].Hash
	}
	return evs
}

// TestAppendChainedFollowsOtherWriters: two stores on one prefix (two
// replicas). After the other one appends, a call chained onto the stale
// head writes nothing and says ErrConflict; the next call is handed the
// head the other writer left, without a read in between, and lands.
func TestAppendChainedFollowsOtherWriters(t *testing.T) {
	p := startEtcd(t)
	a := open(t, p, "/chain/", nil)
	b := open(t, p, "/chain/", nil)
	var gotSeq uint64
	var gotHash string
	call := func(s *etcd.Store, n int) error {
		return s.AppendChained(ctx, func(seq uint64, hash string) []store.Event {
			gotSeq, gotHash = seq, hash
			return chained(seq, hash, n)
		})
	}
	if err := call(a, 3); err != nil || gotSeq != 0 || gotHash != "" {
		t.Fatalf("first append on an empty log: %v (handed seq %d hash %q, want 0, \"\")", err, gotSeq, gotHash)
	}
	if err := call(b, 2); err != nil || gotSeq != 3 || gotHash != "h3" {
		t.Fatalf("append on the second store: %v (handed %d %q, want 3 h3)", err, gotSeq, gotHash)
	}
	// a still believes the head is 3.
	err := call(a, 1)
	if !errors.Is(err, store.ErrConflict) || gotSeq != 3 {
		t.Fatalf("append onto a stale head = %v (handed %d); want ErrConflict, handed 3", err, gotSeq)
	}
	if e, ok, err := a.LastEvent(ctx); err != nil || !ok || e.Seq != 5 || e.Hash != "h5" {
		t.Fatalf("after the lost race the log ends at %+v %v %v; want b's event 5 (nothing of a's written)", e, ok, err)
	}
	if err := call(a, 2); err != nil || gotSeq != 5 || gotHash != "h5" {
		t.Fatalf("retry: %v (handed %d %q, want 5 h5 from the lost race)", err, gotSeq, gotHash)
	}
	var seqs []uint64
	if err := a.ScanEvents(ctx, 0, func(e store.Event) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("stored seqs %v; want 1..7 once each", seqs)
	}
}
