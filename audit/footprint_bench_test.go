package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// The footprint benchmarks measure what one audit event costs each store,
// for the README's "how big the log can grow before archiving". Run them
// once each:
//
//	go test -run '^$' -bench Footprint -benchtime 1x ./audit

// footprintEvents is how many events a footprint run appends.
const footprintEvents = 50000

// mixEvent is the i-th event of a plausible mix: mostly kube.request
// (kubectl is chatty), then logins, forwards and commands, with the
// details the bastion records for each.
func mixEvent(i int) store.Event {
	user := fmt.Sprintf("user%d", i%40)
	switch i % 10 {
	case 0:
		return store.Event{Actor: user, Action: "auth.success", Decision: "allow", Details: map[string]string{
			"method": "publickey", "fingerprint": "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8", "key_type": "ssh-ed25519",
			"source": fmt.Sprintf("10.1.%d.%d:%d", i%250, i%200, 40000+i%20000), "login": user, "conn": fmt.Sprintf("c-%016x", i)}}
	case 1:
		return store.Event{Actor: user, Action: "forward.open", Target: "prod-db", Decision: "allow", Reason: "act",
			Details: map[string]string{"port": "5432", "session": fmt.Sprintf("s-%016x", i), "source": "10.1.2.3:51234"}}
	case 2:
		return store.Event{Actor: user, Action: "command.run", Target: "audit", Decision: "allow",
			Details: map[string]string{"args": "audit --since 1h", "conn": fmt.Sprintf("c-%016x", i)}}
	default:
		return store.Event{Actor: user, Action: "kube.request", Target: "prod", Decision: "allow", Details: map[string]string{
			"verb": "get", "resource": "pods", "namespace": "payments", "name": fmt.Sprintf("api-7d9f8b6c5-%05d", i%100000),
			"path": fmt.Sprintf("/api/v1/namespaces/payments/pods/api-7d9f8b6c5-%05d", i%100000), "status": "200",
			"latency_ms": "3.412", "bytes_in": "0", "bytes_out": "4127", "session": fmt.Sprintf("s-%016x", i/50),
			"as_user": user, "as_groups": "dev,oncall"}}
	}
}

// appendMix appends n mixed events through l from 32 goroutines (so they
// are group-committed as under load) and returns their mean JSON size.
func appendMix(b *testing.B, l *audit.Log, n int) float64 {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 32 {
				e, err := l.Append(context.Background(), mixEvent(i))
				if err != nil {
					b.Error(err)
					return
				}
				j, _ := json.Marshal(e)
				mu.Lock()
				total += len(j)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(total) / float64(n)
}

func BenchmarkFootprintEtcd(b *testing.B) {
	p := etcdtest.Start(b)
	st, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cli := st.Client()
	status := func() (size, inUse int64) {
		s, err := cli.Status(ctx, p.ClientURL)
		if err != nil {
			b.Fatal(err)
		}
		return s.DbSize, s.DbSizeInUse
	}
	size0, inUse0 := status()
	l, err := audit.New(st, audit.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	mean := appendMix(b, l, footprintEvents)
	size1, inUse1 := status()
	// What stays once history is compacted (as --auto-compaction does)
	// and the file defragmented.
	rev, err := st.Rev(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cli.Compact(ctx, int64(rev), clientv3.WithCompactPhysical()); err != nil {
		b.Fatal(err)
	}
	if _, err := cli.Defragment(ctx, p.ClientURL); err != nil {
		b.Fatal(err)
	}
	size2, inUse2 := status()
	// Archive it all, then compact and defragment: the space comes back.
	start := time.Now()
	rep, err := l.Archive(ctx, time.Now(), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	archiveTime := time.Since(start)
	if rev, err = st.Rev(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := cli.Compact(ctx, int64(rev), clientv3.WithCompactPhysical()); err != nil {
		b.Fatal(err)
	}
	if _, err := cli.Defragment(ctx, p.ClientURL); err != nil {
		b.Fatal(err)
	}
	size3, _ := status()
	n := float64(footprintEvents)
	b.ReportMetric(float64(rep.Count)/archiveTime.Seconds(), "archived-events/s")
	b.ReportMetric(float64(size3-size0)/n, "after-archive-db-B/event")
	b.ReportMetric(mean, "json-B/event")
	b.ReportMetric(float64(size1-size0)/n, "db-B/event")
	b.ReportMetric(float64(inUse1-inUse0)/n, "in-use-B/event")
	b.ReportMetric(float64(size2-size0)/n, "compacted-db-B/event")
	b.ReportMetric(float64(inUse2-inUse0)/n, "compacted-in-use-B/event")
}

func BenchmarkFootprintBadger(b *testing.B) {
	dir := b.TempDir()
	st, err := badger.Open(dir, badger.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	l, err := audit.New(st, audit.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	mean := appendMix(b, l, footprintEvents)
	l.Close()
	if err := st.Close(); err != nil { // flushes the memtable to a table
		b.Fatal(err)
	}
	var size int64
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(mean, "json-B/event")
	b.ReportMetric(float64(size)/footprintEvents, "disk-B/event")
}
