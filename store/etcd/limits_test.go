package etcd_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/storetest"
)

func blobKeys(t *testing.T, s *etcd.Store) int64 {
	t.Helper()
	resp, err := s.Client().Get(ctx, s.Prefix()+"~blob/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// TestValuesLargerThanOneRequest: a secret and a model version above
// etcd's 1.5 MiB request limit are stored in chunks and read back whole;
// replacing one removes its old chunks; a small secret beginning with the
// manifest byte is not mistaken for one; a recording chunk larger than a
// request is split and read back in order.
func TestValuesLargerThanOneRequest(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "", nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10) // 3.2 MiB
	big[0] = 0xff
	if err := s.PutSecret(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSecret(ctx, "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("GetSecret(big): %d bytes, %v; want %d bytes back", len(got), err, len(big))
	}
	if n := blobKeys(t, s); n < 7 {
		t.Fatalf("%d blob chunks for 3.2 MiB", n)
	}
	if err := s.PutSecret(ctx, "big", []byte("small now")); err != nil {
		t.Fatal(err)
	}
	if n := blobKeys(t, s); n != 0 {
		t.Fatalf("%d blob chunks left after replacing the large secret", n)
	}
	for _, v := range [][]byte{{0xff}, {0xff, '{', '}'}, {}} {
		if err := s.PutSecret(ctx, "odd", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSecret(ctx, "odd"); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("GetSecret(odd) = %q, %v; want %q", got, err, v)
		}
	}

	src := strings.Repeat("type user\n", 110<<10) // ~1.1 MiB of model source
	m, err := s.AppendModel(ctx, store.NewModelVersion(src, "alice", "load", 0, storetest.Epoch))
	if err != nil {
		t.Fatal(err)
	}
	latest, ok, err := s.LatestModel(ctx)
	if err != nil || !ok || latest.Source != src || latest.Version != m.Version {
		t.Fatalf("LatestModel: version %d, %d bytes, %v, %v", latest.Version, len(latest.Source), ok, err)
	}
	all, err := s.ModelVersions(ctx)
	if err != nil || len(all) != 1 || all[0].Source != src {
		t.Fatalf("ModelVersions: %d, %v", len(all), err)
	}

	chunk := bytes.Repeat([]byte("x"), 1300<<10)
	chunk[len(chunk)-1] = 'y'
	if err := s.AppendRecording(ctx, "r", []byte("head")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecording(ctx, "r", chunk); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecording(ctx, "r", []byte("tail")); err != nil {
		t.Fatal(err)
	}
	var rec bytes.Buffer
	if err := s.ReadRecording(ctx, "r", func(b []byte) error { rec.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := "head" + string(chunk) + "tail"; rec.String() != want {
		t.Fatalf("recording: %d bytes back, want %d", rec.Len(), len(want))
	}
}

// TestWriteTuplesLargerThanOneTxn: a call beyond etcd's 128 operations is
// split, and every tuple lands in both indexes.
func TestWriteTuplesLargerThanOneTxn(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "", nil)
	var add []store.Tuple
	for i := 0; i < 1000; i++ {
		add = append(add, store.Tuple{Object: fmt.Sprintf("resource:r%d", i), Relation: "act", Subject: "user:a"})
	}
	if err := s.WriteTuples(ctx, add, nil); err != nil {
		t.Fatal(err)
	}
	ts, err := s.TuplesBySubject(ctx, "user:a", "resource")
	if err != nil || len(ts) != 1000 {
		t.Fatalf("TuplesBySubject: %d, %v", len(ts), err)
	}
	if err := s.WriteTuples(ctx, nil, add); err != nil {
		t.Fatal(err)
	}
	if ts, err := s.ListTuples(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("ListTuples after deleting all: %d, %v", len(ts), err)
	}
}

// TestConcurrentReplicasCannotForkTheChain: replicas appending at once,
// each chaining its events to the LastEvent it read, end with one event
// per seq whose PrevHash is the stored previous event's Hash. A loser of a
// race gets ErrHeadMoved (or a gap error) and retries.
func TestConcurrentReplicasCannotForkTheChain(t *testing.T) {
	p := startEtcd(t)
	const replicas, each = 3, 40
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	moved := make(chan struct{}, replicas*each*100)
	for r := 0; r < replicas; r++ {
		s := open(t, p, "/chain/", nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < each; {
				last, _, err := s.LastEvent(ctx)
				if err != nil {
					errs <- err
					return
				}
				var evs []store.Event
				prev := last.Hash
				for i := 0; i < 3; i++ {
					seq := last.Seq + uint64(i) + 1
					h := fmt.Sprintf("r%d-%d", r, seq)
					evs = append(evs, store.Event{Seq: seq, Actor: fmt.Sprintf("replica:%d", r), Action: "x", PrevHash: prev, Hash: h})
					prev = h
				}
				err = s.AppendEvents(ctx, evs)
				if errors.Is(err, etcd.ErrHeadMoved) {
					moved <- struct{}{}
					continue
				}
				if err != nil && strings.Contains(err.Error(), "gap") {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				n++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := open(t, p, "/chain/", nil)
	var prev store.Event
	n := 0
	if err := s.ScanEvents(ctx, 0, func(e store.Event) error {
		n++
		if e.Seq != uint64(n) || (n > 1 && e.PrevHash != prev.Hash) {
			return fmt.Errorf("event %d (seq %d) chains to %q, but the stored previous hash is %q", n, e.Seq, e.PrevHash, prev.Hash)
		}
		prev = e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != replicas*each*3 {
		t.Fatalf("%d events stored, want %d", n, replicas*each*3)
	}
	t.Logf("%d events from %d replicas; %d appends lost a race to the head and were retried", n, replicas, len(moved))
}
