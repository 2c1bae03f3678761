package etcd_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
)

// seqChain stands in for audit.ChainAfter: a hash over the previous hash,
// the seq and the action, so a batch chained twice, or chained by one
// writer and recomputed by another over different content, shows.
func seqChain(seq uint64, prev string, evs []store.Event) []store.Event {
	out := make([]store.Event, len(evs))
	for i, e := range evs {
		seq++
		sum := sha256.Sum256([]byte(prev + "/" + strconv.FormatUint(seq, 10) + "/" + e.Action))
		e.Seq, e.PrevHash, e.Hash = seq, prev, hex.EncodeToString(sum[:])
		prev = e.Hash
		out[i] = e
	}
	return out
}

// appendFrom appends n batches of 1-4 events from each of writers
// goroutines on s, and records every returned event by seq.
func appendFrom(t *testing.T, s *etcd.Store, name string, writers, n int, got *sync.Map, wg *sync.WaitGroup) {
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				batch := make([]store.Event, 1+(i+w)%4)
				for j := range batch {
					batch[j] = store.Event{Action: fmt.Sprintf("%s.%d.%d.%d", name, w, i, j), Time: time.Now()}
				}
				out, err := s.AppendSequenced(ctx, batch, seqChain)
				if err != nil {
					t.Errorf("%s: AppendSequenced: %v", name, err)
					return
				}
				for j, e := range out {
					if e.Action != batch[j].Action {
						t.Errorf("%s: event %d came back as %q, sent %q", name, e.Seq, e.Action, batch[j].Action)
					}
					if _, dup := got.LoadOrStore(e.Seq, e); dup {
						t.Errorf("seq %d returned twice", e.Seq)
					}
				}
			}
		}()
	}
}

// checkChain fails unless s holds exactly the events in got, seqs 1..n,
// each linked to the one before, and returns n.
func checkChain(t *testing.T, s *etcd.Store, got *sync.Map) uint64 {
	t.Helper()
	var n uint64
	prev := ""
	err := s.ScanEvents(ctx, 0, func(e store.Event) error {
		n++
		want, ok := got.Load(e.Seq)
		switch {
		case e.Seq != n:
			return fmt.Errorf("event %d where %d belongs: a gap", e.Seq, n)
		case !ok || want.(store.Event).Hash != e.Hash:
			return fmt.Errorf("stored event %d (%s) was not acknowledged as such", e.Seq, e.Action)
		case e.PrevHash != prev:
			return fmt.Errorf("event %d links to %.12s, not %.12s: a fork", e.Seq, e.PrevHash, prev)
		}
		prev = e.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	got.Range(func(any, any) bool { acked++; return true })
	if uint64(acked) != n {
		t.Fatalf("%d events acknowledged, %d stored", acked, n)
	}
	return n
}

// TestSequencerOneChainFromThreeStores: three stores on one prefix (three
// replicas) append concurrently through the sequencer. Every batch comes
// back chained once, the stored log is exactly what was acknowledged, one
// gap-free linked chain, and it is packed: fewer event keys than events.
func TestSequencerOneChainFromThreeStores(t *testing.T) {
	stores, n := threeAppending(t, "/seq/", nil, 8, 25)
	keys, err := stores[0].Client().Get(ctx, "/seq/~e/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events in %d keys", n, keys.Count)
	if keys.Count >= int64(n) {
		t.Fatalf("%d event keys for %d events: nothing was packed", keys.Count, n)
	}
	if e, ok, err := stores[1].LastEvent(ctx); err != nil || !ok || e.Seq != n {
		t.Fatalf("LastEvent = %d %v %v; want %d", e.Seq, ok, err, n)
	}
	left, err := stores[0].Client().Get(ctx, "/seq/~ai/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range left.Kvs {
		t.Fatalf("inbox key %s still waits after every append returned: %s", kv.Key, kv.Value)
	}
	receipts, err := stores[0].Client().Get(ctx, "/seq/~ak/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range receipts.Kvs {
		if !containsChained(kv.Value) {
			t.Fatalf("receipt key %s holds no receipt: %s", kv.Key, kv.Value)
		}
	}
}

// containsChained says whether a value is a receipt.
func containsChained(v []byte) bool {
	var r struct {
		Chained bool `json:"c"`
	}
	return json.Unmarshal(v, &r) == nil && r.Chained
}

// TestSequencerGoesOnWhenTheLeaderCloses: the store that leads (the first
// to append) closes while the others append. Their appends go on, by a
// new election or by sweeping their own batches, and the chain stays one.
func TestSequencerGoesOnWhenTheLeaderCloses(t *testing.T) {
	lead, b, _, got, wg := leaderAndTwoAppending(t, "/seqf/", 20)
	time.Sleep(100 * time.Millisecond)
	lead.Close()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if n := checkChain(t, b, got); n < 1+8*20 {
		t.Fatalf("%d events stored, want at least %d", n, 1+8*20)
	}
}

// threeAppending opens three stores on prefix (mod applied to their
// options), appends n batches from writers goroutines on each, checks the
// chain, and returns the stores and how many events it holds.
func threeAppending(t *testing.T, prefix string, mod func(*etcd.Options), writers, n int) ([]*etcd.Store, uint64) {
	t.Helper()
	p := startEtcd(t)
	stores := []*etcd.Store{open(t, p, prefix, mod), open(t, p, prefix, mod), open(t, p, prefix, mod)}
	var got sync.Map
	var wg sync.WaitGroup
	for i, s := range stores {
		appendFrom(t, s, "r"+strconv.Itoa(i), writers, n, &got, &wg)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return stores, checkChain(t, stores[2], &got)
}

// leaderAndTwoAppending opens a store on prefix that appends first (and
// so leads the sequencer), then two more, each appending n batches from 4
// writers into got until wg is done.
func leaderAndTwoAppending(t *testing.T, prefix string, n int) (lead, b, c *etcd.Store, got *sync.Map, wg *sync.WaitGroup) {
	t.Helper()
	p := startEtcd(t)
	lead = open(t, p, prefix, nil)
	if _, err := lead.AppendSequenced(ctx, []store.Event{{Action: "first"}}, seqChain); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let it win the election
	got, wg = &sync.Map{}, &sync.WaitGroup{}
	got.Store(uint64(1), mustFirst(t, lead))
	b, c = open(t, p, prefix, nil), open(t, p, prefix, nil)
	appendFrom(t, b, "b", 4, n, got, wg)
	appendFrom(t, c, "c", 4, n, got, wg)
	return lead, b, c, got, wg
}

func mustFirst(t *testing.T, s *etcd.Store) store.Event {
	e, ok, err := s.LastEvent(ctx)
	if err != nil || !ok || e.Seq != 1 {
		t.Fatalf("LastEvent = %+v %v %v", e, ok, err)
	}
	return e
}

// TestBlocksReadAndArchive: 50 events chained in one sweep are one key;
// every read, tamper and archive operation sees them as 50 events.
func TestBlocksReadAndArchive(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "/blk/", nil)
	batch := make([]store.Event, 50)
	for i := range batch {
		batch[i] = store.Event{Action: "a" + strconv.Itoa(i+1), Actor: "user:u"}
	}
	out, err := s.AppendSequenced(ctx, batch, seqChain)
	if err != nil || len(out) != 50 || out[49].Seq != 50 {
		t.Fatalf("AppendSequenced: %d events, %v", len(out), err)
	}
	keys, _ := s.Client().Get(ctx, "/blk/~e/", clientv3.WithPrefix())
	if len(keys.Kvs) != 1 {
		t.Fatalf("%d keys for one sweep; want 1 block", len(keys.Kvs))
	}
	// Stored compressed (zstd's magic number first), and smaller than
	// the events' JSON.
	plain, _ := json.Marshal(out)
	if v := keys.Kvs[0].Value; !bytes.HasPrefix(v, []byte{0x28, 0xb5, 0x2f, 0xfd}) || len(v) >= len(plain) {
		t.Fatalf("the block is stored as %d bytes starting %x; want zstd, under the %d bytes of JSON", len(v), v[:min(4, len(v))], len(plain))
	}
	var seqs []uint64
	if err := s.ScanEvents(ctx, 20, func(e store.Event) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 31 || seqs[0] != 20 || seqs[30] != 50 {
		t.Fatalf("ScanEvents from 20 inside a block: %v", seqs)
	}
	q, err := s.QueryEvents(ctx, store.EventFilter{Limit: 5})
	if err != nil || len(q) != 5 || q[0].Seq != 46 || q[4].Seq != 50 {
		t.Fatalf("QueryEvents Limit 5 = %d events from %d, %v; want 46..50", len(q), first(q), err)
	}
	if err := s.TamperEventForTest(25, func(e *store.Event) { e.Action = "forged" }); err != nil {
		t.Fatal(err)
	}
	var forged []uint64
	_ = s.ScanEvents(ctx, 0, func(e store.Event) error {
		if e.Action != out[e.Seq-1].Action {
			forged = append(forged, e.Seq)
		}
		return nil
	})
	if len(forged) != 1 || forged[0] != 25 {
		t.Fatalf("after tampering with 25, the events that differ are %v", forged)
	}
	if err := s.TamperEventForTest(25, func(e *store.Event) { e.Action = out[24].Action }); err != nil {
		t.Fatal(err)
	}
	cp := store.Checkpoint{Seq: 30, Hash: out[29].Hash}
	if err := s.PutCheckpoint(ctx, store.Checkpoint{}, cp); err != nil {
		t.Fatalf("PutCheckpoint inside a block: %v", err)
	}
	n, err := s.DeleteEventsThrough(ctx, 30)
	if err != nil || n != 30 {
		t.Fatalf("DeleteEventsThrough(30) = %d, %v; want 30", n, err)
	}
	seqs = nil
	if err := s.ScanEvents(ctx, 0, func(e store.Event) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 20 || seqs[0] != 31 || seqs[19] != 50 {
		t.Fatalf("after archiving through 30: %v", seqs)
	}
	if e, ok, err := s.LastEvent(ctx); err != nil || !ok || e.Seq != 50 || e.Hash != out[49].Hash {
		t.Fatalf("LastEvent after the split = %d %v %v", e.Seq, ok, err)
	}
	// The chain goes on after the split block.
	more, err := s.AppendSequenced(ctx, []store.Event{{Action: "next"}}, seqChain)
	if err != nil || more[0].Seq != 51 || more[0].PrevHash != out[49].Hash {
		t.Fatalf("append after archiving: %+v, %v", more, err)
	}
}

func first(q []store.Event) uint64 {
	if len(q) == 0 {
		return 0
	}
	return q[0].Seq
}
