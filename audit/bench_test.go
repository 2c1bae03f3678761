package audit_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// benchParallelism × GOMAXPROCS goroutines append at once in both append
// benchmarks: a busy bastion has many sessions auditing concurrently.
const benchParallelism = 64

func benchEvent(i int64) store.Event {
	return store.Event{Actor: "user:alice", Action: "forward.open", Target: "resource:web-1",
		Decision: "allow", Reason: "act via group:ops#member",
		Details: map[string]string{"port": "5432", "src": "192.0.2.10:51234", "n": fmt.Sprint(i)}}
}

func openDisk(b *testing.B, dir string) *badger.Store {
	b.Helper()
	s, err := badger.Open(dir, badger.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkAuditAppend measures durable, hash-chained appends through Log
// (group commit onto badger with SyncWrites) from many goroutines.
func BenchmarkAuditAppend(b *testing.B) {
	st := openDisk(b, b.TempDir())
	defer st.Close()
	l, err := audit.New(st, audit.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var n atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(ctx, benchEvent(n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, start)
}

// BenchmarkRawBadgerGroupCommit is the peer: the same number of concurrent
// durable writes of a similar JSON event straight into badger, one
// transaction each, left to badger's own write batching (it merges
// concurrent commits into one write request). No chain, no seq check.
func BenchmarkRawBadgerGroupCommit(b *testing.B) {
	db, err := bdb.Open(bdb.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil).WithMetricsEnabled(false))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sample := benchEvent(1)
	sample.Seq, sample.Time = 1, time.Now().UTC()
	sample.PrevHash, sample.Hash = audit.Genesis, audit.Hash(sample)
	var n atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			e := sample
			e.Details = map[string]string{"port": "5432", "src": "192.0.2.10:51234", "n": fmt.Sprint(i)}
			v, _ := json.Marshal(e)
			k := binary.BigEndian.AppendUint64([]byte("e/"), uint64(i))
			if err := db.Update(func(txn *bdb.Txn) error { return txn.Set(k, v) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, start)
}

// BenchmarkVerify1M times Verify over a million stored events, read back
// from disk after a reopen.
func BenchmarkVerify1M(b *testing.B) {
	const total = 1_000_000
	dir := b.TempDir()
	st := openDisk(b, dir)
	evs := make([]store.Event, 0, 5000)
	prev, t := audit.Genesis, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for seq := uint64(1); seq <= total; seq++ {
		e := benchEvent(int64(seq))
		e.Seq, e.Time, e.PrevHash = seq, t.Add(time.Duration(seq)*time.Millisecond), prev
		e.Hash = audit.Hash(e)
		prev = e.Hash
		evs = append(evs, e)
		if len(evs) == cap(evs) || seq == total {
			if err := st.AppendEvents(ctx, evs); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	st = openDisk(b, dir)
	defer st.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r, err := audit.Verify(ctx, st)
		if err != nil || !r.OK || r.Count != total {
			b.Fatalf("Verify = %+v, %v", r, err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/verify")
	b.ReportMetric(float64(total*b.N)/time.Since(start).Seconds(), "events/s")
}
