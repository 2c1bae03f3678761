package audit_test

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// acked collects what the Logs acknowledged: seq -> hash.
type acked struct {
	mu   sync.Mutex
	seqs map[uint64]string
	dup  []uint64
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// count is how many events were acknowledged so far.
func (a *acked) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seqs)
}

func (a *acked) add(e store.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.seqs[e.Seq]; ok {
		a.dup = append(a.dup, e.Seq)
	}
	a.seqs[e.Seq] = e.Hash
}

// load appends perWriter events from each of writers goroutines on every
// Log, and fails the test on any error.
func load(t *testing.T, logs []*audit.Log, writers, perWriter int, a *acked) {
	t.Helper()
	var wg sync.WaitGroup
	for r, l := range logs {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					e, err := l.Append(ctx, store.Event{Actor: fmt.Sprintf("user:r%d-w%d", r, w), Action: "kube.request",
						Target: "kube:prod", Details: map[string]string{"i": fmt.Sprint(i)}})
					if err != nil {
						t.Errorf("replica %d: Append: %v", r, err)
						return
					}
					a.add(e)
				}
			}()
		}
	}
	wg.Wait()
}

// checkOneChain: the acknowledged seqs are exactly 1..n, each once.
func checkOneChain(t *testing.T, a *acked, n int) {
	t.Helper()
	if len(a.dup) > 0 {
		t.Fatalf("seqs acknowledged twice: %v", a.dup[:min(len(a.dup), 10)])
	}
	if len(a.seqs) != n {
		t.Fatalf("%d events acknowledged, want %d", len(a.seqs), n)
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if _, ok := a.seqs[seq]; !ok {
			t.Fatalf("seq %d was never acknowledged: a gap", seq)
		}
	}
}

// TestWritersShareOneChain: three Logs on one badger store (as replicas on
// one etcd would be) keep one chain.
func TestWritersShareOneChain(t *testing.T) {
	st := memStore(t)
	logs := []*audit.Log{newLog(t, st, audit.Options{}), newLog(t, st, audit.Options{}), newLog(t, st, audit.Options{})}
	a := &acked{seqs: map[uint64]string{}}
	load(t, logs, 8, 50, a)
	checkOneChain(t, a, 3*8*50)
	mustVerify(t, st, 3*8*50)
	var conflicts uint64
	for _, l := range logs {
		conflicts += l.Conflicts()
	}
	if conflicts == 0 {
		t.Fatal("no Log ever lost the head to another: the test tests nothing")
	}
}

// plainGaps reports a lost race as a plain error, as a store might that
// does not know store.ErrConflict.
type plainGaps struct{ store.AuditLog }

func (p plainGaps) AppendEvents(ctx context.Context, evs []store.Event) error {
	if err := p.AuditLog.AppendEvents(ctx, evs); err != nil {
		return errors.New(err.Error())
	}
	return nil
}

// TestWritersWithoutErrConflict: the Log also re-chains when the store
// says only that the seq was taken, having seen another writer's event
// there.
func TestWritersWithoutErrConflict(t *testing.T) {
	st := memStore(t)
	logs := []*audit.Log{newLog(t, plainGaps{st}, audit.Options{}), newLog(t, plainGaps{st}, audit.Options{})}
	a := &acked{seqs: map[uint64]string{}}
	load(t, logs, 8, 50, a)
	checkOneChain(t, a, 2*8*50)
	mustVerify(t, st, 2*8*50)
	if logs[0].Conflicts()+logs[1].Conflicts() == 0 {
		t.Fatal("no Log ever lost the head to the other: the test tests nothing")
	}
}

// verifyDuring runs Verify on st until stop is closed, failing the test on
// any report that is not OK: archives and appends running meanwhile must
// never make the chain look broken.
func verifyDuring(t *testing.T, st store.AuditLog, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				if n == 0 {
					t.Error("Verify never ran during the load")
				}
				return
			default:
			}
			r, err := audit.Verify(ctx, st)
			if err != nil || !r.OK {
				t.Errorf("Verify during archives and appends: %+v, %v", r, err)
				return
			}
		}
	}()
	return &wg
}

// TestArchiveWhileWriting: archives run while three Logs append and Verify
// runs; nothing is lost, nothing breaks.
func TestArchiveWhileWriting(t *testing.T) {
	st := memStore(t)
	logs := []*audit.Log{newLog(t, st, audit.Options{}), newLog(t, st, audit.Options{}), newLog(t, st, audit.Options{})}
	a := &acked{seqs: map[uint64]string{}}
	stop := make(chan struct{})
	verifying := verifyDuring(t, st, stop)
	var segs [][]byte
	archiving := make(chan struct{})
	go func() {
		defer close(archiving)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var seg bytes.Buffer
			if _, err := logs[0].Archive(ctx, time.Now(), &seg); err != nil && !errors.Is(err, audit.ErrNothingToArchive) {
				t.Errorf("Archive: %v", err)
				return
			}
			if seg.Len() > 0 {
				segs = append(segs, seg.Bytes())
			}
		}
	}()
	load(t, logs, 8, 100, a)
	close(stop)
	<-archiving
	verifying.Wait()
	checkOneChain(t, a, 3*8*100)
	if len(segs) < 2 {
		t.Fatalf("%d archives ran during the load; want several", len(segs))
	}
	sr := verifySeg(t, st, segs...)
	r := verify(t, st)
	if !sr.OK || sr.Link != audit.LinkCheckpoint || !r.OK || sr.Count+r.Count != 3*8*100 || r.From != sr.LastSeq {
		t.Fatalf("after the load: segments %+v, live %+v", sr, r)
	}
}

// TestReplicasOnEtcd: three Logs on three etcd clients sharing a prefix,
// loaded at once while one of them archives; then every acknowledged event
// is in a segment or in the store, once, the chain verifies and the
// segments link to it; and after kill -9 of etcd, all of it is still
// there.
func TestReplicasOnEtcd(t *testing.T) {
	p := etcdtest.Start(t)
	openStore := func() *etcd.Store {
		s, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/ha/", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	stores := []*etcd.Store{openStore(), openStore(), openStore()}
	logs := make([]*audit.Log, len(stores))
	for i, s := range stores {
		logs[i] = newLog(t, s, audit.Options{})
	}
	const writers, perWriter = 12, 40
	a := &acked{seqs: map[uint64]string{}}
	var segs [][]byte
	var archived uint64
	done := make(chan struct{})
	stopVerify := make(chan struct{})
	verifying := verifyDuring(t, stores[0], stopVerify)
	total := len(logs) * writers * perWriter
	loaded := make(chan struct{})
	go func() {
		defer close(done)
		// Archive everything older than now, twice, while the load runs:
		// once a third and once two thirds of it were acknowledged
		// (by progress, not by time: how fast the load goes varies).
		for k := 1; k <= 2; k++ {
			for a.count() < total*k/3 && !isClosed(loaded) {
				time.Sleep(5 * time.Millisecond)
			}
			var seg bytes.Buffer
			rep, err := logs[1].Archive(ctx, time.Now(), &seg)
			if err != nil {
				t.Errorf("Archive during the load: %v", err)
				return
			}
			segs = append(segs, seg.Bytes())
			archived += rep.Count
		}
	}()
	load(t, logs, writers, perWriter, a)
	close(loaded) // a failed load stops the archiver waiting for progress
	<-done
	close(stopVerify)
	verifying.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkOneChain(t, a, total)
	// The replicas' batches went through the sequencer, which packs
	// several batches into one key: fewer event keys than events.
	keys, err := stores[0].Client().Get(ctx, "/ha/~e/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events from 3 replicas in %d keys, %d archived in %d segments", total, keys.Count, archived, len(segs))
	if keys.Count == 0 || keys.Count >= int64(uint64(total)-archived) {
		t.Fatalf("%d event keys for %d stored events: the sequencer packed nothing", keys.Count, uint64(total)-archived)
	}
	if archived == 0 {
		t.Fatal("nothing was archived during the load")
	}
	check := func(st store.AuditLog) {
		t.Helper()
		r := verify(t, st)
		if !r.OK || r.From != archived || r.Count+r.From != uint64(total) || r.LastSeq != uint64(total) {
			t.Fatalf("Verify: %+v; want OK from %d to %d", r, archived, total)
		}
		if sr := verifySeg(t, st, segs...); !sr.OK || sr.Link != audit.LinkCheckpoint || sr.Count != archived || sr.FirstSeq != 1 {
			t.Fatalf("VerifySegment of every segment: %+v", sr)
		}
		// Every acknowledged event is stored, with the hash it was
		// acknowledged with.
		n := 0
		err := st.ScanEvents(ctx, 0, func(e store.Event) error {
			if a.seqs[e.Seq] != e.Hash {
				return fmt.Errorf("stored event %d has hash %.16s, acknowledged %.16s", e.Seq, e.Hash, a.seqs[e.Seq])
			}
			n++
			return nil
		})
		if err != nil || uint64(n) != uint64(total)-archived {
			t.Fatalf("stored: %d events, %v; want %d", n, err, uint64(total)-archived)
		}
	}
	check(stores[2])

	for i, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		stores[i].Close()
	}
	p.Kill(t)
	p.Start(t)
	st := openStore()
	check(st)
	l := newLog(t, st, audit.Options{})
	if e, err := l.Append(ctx, store.Event{Action: "after.restart"}); err != nil || e.Seq != uint64(total)+1 {
		t.Fatalf("Append after the restart: seq %d, %v", e.Seq, err)
	}
}
