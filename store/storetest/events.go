package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func scanAll(t *testing.T, s store.Store, from uint64) []store.Event {
	t.Helper()
	var out []store.Event
	must(t, s.ScanEvents(bg, from, func(e store.Event) error {
		out = append(out, e)
		return nil
	}), fmt.Sprintf("ScanEvents(%d)", from))
	return out
}

func testEventsAppend(t *testing.T, s store.Store, _ *Clock) {
	_, ok, err := s.LastEvent(bg)
	must(t, err, "LastEvent(empty)")
	if ok {
		t.Fatal("LastEvent on an empty log: ok = true")
	}
	equal(t, "scan empty", len(scanAll(t, s, 0)), 0)
	must(t, s.AppendEvents(bg, nil), "AppendEvents(nil)")

	evs := mkEvents(1, 4) // even seqs carry Details
	must(t, s.AppendEvents(bg, evs[:1]), "AppendEvents(1)")
	must(t, s.AppendEvents(bg, evs[1:]), "AppendEvents(2..4)")
	last, ok, err := s.LastEvent(bg)
	must(t, err, "LastEvent")
	if !ok {
		t.Fatal("LastEvent: ok = false after appends")
	}
	equal(t, "LastEvent", normEvent(last), normEvent(evs[3]))
	// Every field round-trips, hashes included, untouched by the store.
	equal(t, "stored events", normEvents(scanAll(t, s, 1)), normEvents(evs))

	// The caller may not alter the cached last event through its copy.
	last.Details["port"] = "tampered"
	again, _, err := s.LastEvent(bg)
	must(t, err, "LastEvent again")
	equal(t, "LastEvent after caller mutation", normEvent(again), normEvent(evs[3]))
}

func testEventsGapRejected(t *testing.T, s store.Store, _ *Clock) {
	// A hole in the seqs could hide a deleted event, so every batch must
	// continue the stored sequence exactly.
	wantErr(t, s.AppendEvents(bg, mkEvents(2, 2)), "first append with seq 2")
	wantErr(t, s.AppendEvents(bg, mkEvents(0, 0)), "append with seq 0")
	_, ok, err := s.LastEvent(bg)
	must(t, err, "LastEvent")
	if ok {
		t.Fatal("a rejected append left an event behind")
	}
	must(t, s.AppendEvents(bg, mkEvents(1, 3)), "AppendEvents(1..3)")

	for _, bad := range [][]store.Event{
		mkEvents(5, 6), // gap after the stored end
		mkEvents(3, 4), // overlaps the stored end
		mkEvents(1, 1), // rewrites history
		append(mkEvents(4, 4), mkEvents(6, 6)...), // gap inside the batch
		append(mkEvents(4, 5), mkEvents(5, 5)...), // repeat inside the batch
	} {
		wantErr(t, s.AppendEvents(bg, bad), fmt.Sprintf("AppendEvents(%v)", seqs(bad)))
	}
	// None of the rejected batches may have left anything, not even their
	// valid first event.
	equal(t, "seqs after rejected batches", seqs(scanAll(t, s, 0)), []uint64{1, 2, 3})
	last, _, err := s.LastEvent(bg)
	must(t, err, "LastEvent")
	equal(t, "LastEvent after rejected batches", last.Seq, uint64(3))
	equal(t, "event 1 intact", normEvent(scanAll(t, s, 1)[0]), normEvent(mkEvents(1, 1)[0]))

	must(t, s.AppendEvents(bg, mkEvents(4, 5)), "AppendEvents(4..5)")
	equal(t, "seqs after good append", seqs(scanAll(t, s, 0)), []uint64{1, 2, 3, 4, 5})
}

func testEventsScan(t *testing.T, s store.Store, _ *Clock) {
	const n = 1200
	evs := mkEvents(1, n)
	for i := 0; i < n; i += 500 {
		must(t, s.AppendEvents(bg, evs[i:min(i+500, n)]), "AppendEvents")
	}
	got := scanAll(t, s, 0)
	equal(t, "scan count", len(got), n)
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("scan position %d has seq %d", i, e.Seq)
		}
	}
	equal(t, "scan from 1000", seqs(scanAll(t, s, 1000))[:3], []uint64{1000, 1001, 1002})
	equal(t, "scan from 1000 count", len(scanAll(t, s, 1000)), n-999)
	equal(t, "scan past end", len(scanAll(t, s, n+1)), 0)

	stop := errors.New("stop here")
	var seen []uint64
	err := s.ScanEvents(bg, 10, func(e store.Event) error {
		seen = append(seen, e.Seq)
		if e.Seq == 12 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("ScanEvents returned %v, want the callback's error", err)
	}
	equal(t, "scan stops at the callback's error", seen, []uint64{10, 11, 12})

	// The same far into the log (backends may read ahead in batches).
	count := 0
	err = s.ScanEvents(bg, 0, func(e store.Event) error {
		if count++; e.Seq == 1100 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || count != 1100 {
		t.Fatalf("scan stopping at 1100: err %v after %d events", err, count)
	}
	cctx, cancel := context.WithCancel(bg)
	cancel()
	if err := s.ScanEvents(cctx, 0, func(store.Event) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("ScanEvents with a cancelled context: %v", err)
	}
}

func query(t *testing.T, s store.Store, f store.EventFilter) []uint64 {
	t.Helper()
	evs, err := s.QueryEvents(bg, f)
	must(t, err, fmt.Sprintf("QueryEvents(%+v)", f))
	return seqs(evs)
}

func testEventsQuery(t *testing.T, s store.Store, _ *Clock) {
	equal(t, "query empty log", query(t, s, store.EventFilter{}), []uint64{})
	// mkEvents: actor user:u(seq%3); action by seq%5: 0 forward.open,
	// 1 forward.close, 2 auth.fail, 3 kube.request, 4 forwarding.x;
	// event seq is at Epoch + seq minutes.
	must(t, s.AppendEvents(bg, mkEvents(1, 20)), "AppendEvents")
	all := make([]uint64, 20)
	for i := range all {
		all[i] = uint64(i + 1)
	}
	at := func(seq int) time.Time { return Epoch.Add(time.Duration(seq) * time.Minute) }

	equal(t, "no filter", query(t, s, store.EventFilter{}), all)
	equal(t, "actor", query(t, s, store.EventFilter{Actor: "user:u1"}), []uint64{1, 4, 7, 10, 13, 16, 19})
	equal(t, "actor is exact", query(t, s, store.EventFilter{Actor: "user:u"}), []uint64{})
	equal(t, "action exact", query(t, s, store.EventFilter{Action: "auth.fail"}), []uint64{2, 7, 12, 17})
	equal(t, "action exact is not a prefix", query(t, s, store.EventFilter{Action: "forward"}), []uint64{})
	equal(t, "action prefix with dot", query(t, s, store.EventFilter{Action: "forward."}),
		[]uint64{1, 5, 6, 10, 11, 15, 16, 20})
	equal(t, "action prefix with star", query(t, s, store.EventFilter{Action: "forward*"}),
		[]uint64{1, 4, 5, 6, 9, 10, 11, 14, 15, 16, 19, 20})
	equal(t, "action dot-star", query(t, s, store.EventFilter{Action: "forward.*"}),
		[]uint64{1, 5, 6, 10, 11, 15, 16, 20})
	equal(t, "action star", query(t, s, store.EventFilter{Action: "*"}), all)
	equal(t, "since is inclusive", query(t, s, store.EventFilter{Since: at(18)}), []uint64{18, 19, 20})
	equal(t, "until is exclusive", query(t, s, store.EventFilter{Until: at(3)}), []uint64{1, 2})
	equal(t, "since and until", query(t, s, store.EventFilter{Since: at(5), Until: at(8)}), []uint64{5, 6, 7})
	equal(t, "since in another zone", query(t, s, store.EventFilter{Since: at(19).In(time.FixedZone("X", 5*3600))}),
		[]uint64{19, 20})

	// Limit keeps the NEWEST matches, still returned oldest first.
	equal(t, "limit", query(t, s, store.EventFilter{Limit: 3}), []uint64{18, 19, 20})
	equal(t, "limit with actor", query(t, s, store.EventFilter{Actor: "user:u1", Limit: 2}), []uint64{16, 19})
	equal(t, "limit above matches", query(t, s, store.EventFilter{Action: "auth.fail", Limit: 10}), []uint64{2, 7, 12, 17})
	equal(t, "limit with until", query(t, s, store.EventFilter{Until: at(10), Limit: 2}), []uint64{8, 9})
	equal(t, "everything combined", query(t, s, store.EventFilter{Since: at(2), Until: at(19), Actor: "user:u0",
		Action: "forward.", Limit: 2}), []uint64{6, 15})

	evs, err := s.QueryEvents(bg, store.EventFilter{Actor: "user:u2", Action: "auth.fail"})
	must(t, err, "QueryEvents")
	equal(t, "query returns whole events", normEvents(evs), normEvents(append(mkEvents(2, 2), mkEvents(17, 17)...)))
}

// testConcurrentWriters checks that concurrent read-modify-write calls keep
// the key index consistent (backends with optimistic transactions must
// retry their conflicts rather than fail or lose an index update).
func testConcurrentWriters(t *testing.T, s store.Store, _ *Clock) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				user := []string{"alice", "bob"}[(g+i)%2]
				if err := s.PutKey(bg, store.Key{Fingerprint: "SHA256:shared", User: user, Added: Epoch}); err != nil {
					errs <- err
					return
				}
				fp := fmt.Sprintf("SHA256:g%d-%d", g, i)
				if err := s.PutKey(bg, store.Key{Fingerprint: fp, User: "carol", Added: Epoch}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent PutKey: %v", err)
	}
	k, err := s.KeyByFingerprint(bg, "SHA256:shared")
	must(t, err, "KeyByFingerprint(shared)")
	ka, err := s.KeysOf(bg, "alice")
	must(t, err, "KeysOf(alice)")
	kb, err := s.KeysOf(bg, "bob")
	must(t, err, "KeysOf(bob)")
	// The shared key must be listed under exactly its current owner.
	equal(t, "index entries for the moved key", len(ka)+len(kb), 1)
	owner := "alice"
	if len(kb) == 1 {
		owner = "bob"
	}
	equal(t, "index owner", owner, k.User)
	kc, err := s.KeysOf(bg, "carol")
	must(t, err, "KeysOf(carol)")
	equal(t, "carol's keys", len(kc), 160)
}

// testEventsLargeBatch appends, in one call, more than one transaction of
// any backend holds (about 3 MB in 3000 events): a backend may split it,
// but every event must land, in order, with the seq check intact.
func testEventsLargeBatch(t *testing.T, s store.Store, _ *Clock) {
	type limiter interface{ TxnLimits() (maxBytes, maxOps int) }
	if l, ok := s.(limiter); ok {
		b, o := l.TxnLimits()
		if b <= 0 || o <= 0 {
			t.Fatalf("TxnLimits() = %d bytes, %d ops; want both positive", b, o)
		}
	}
	const n = 3000
	evs := mkEvents(1, n)
	blob := strings.Repeat("x", 1000)
	for i := range evs {
		evs[i].Details = map[string]string{"blob": blob, "i": fmt.Sprint(i)}
	}
	must(t, s.AppendEvents(bg, evs), "AppendEvents(3000 events of 1 KB)")
	got := scanAll(t, s, 0)
	equal(t, "count", len(got), n)
	for i, e := range got {
		if e.Seq != uint64(i+1) || e.Details["i"] != fmt.Sprint(i) {
			t.Fatalf("position %d holds seq %d, i=%s", i, e.Seq, e.Details["i"])
		}
	}
	last, _, err := s.LastEvent(bg)
	must(t, err, "LastEvent")
	equal(t, "LastEvent", normEvent(last), normEvent(evs[n-1]))
	// The gap check still holds after a split call.
	wantErr(t, s.AppendEvents(bg, mkEvents(n+2, n+2)), "append after a gap")
	must(t, s.AppendEvents(bg, mkEvents(n+1, n+1)), "append the next seq")
}
