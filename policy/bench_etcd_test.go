package policy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
	"github.com/sshbastion/bastion/store/tuplecache"
)

// p3eChecks is how many Checks each (store, cache, callers) pass measures
// at most, after one warm-up pass over every sample question; p3eLimit
// bounds each pass in time (a pass that reaches it reports what it did).
var p3eChecks = map[int]int{1: 20000, 16: 40000}

const p3eLimit = 15 * time.Second

// BenchmarkCheckEtcd (P3 on etcd): the P3 data set (GenerateBenchData(1),
// 1M tuples) loaded into a real etcd member on loopback and into badger
// on disk; on each, the engine runs over store/tuplecache following the
// store's change feed, as `bastion serve` does (tuplecache.Options{Feed:
// st}, so the default MaxAge of 5 s). The cache is warmed with one pass
// over the sample questions, then Check is timed at 1 and 16 callers on
// both stores in the same run. A second cache per store with MaxAge one
// hour ("held": entries leave only on invalidation) shows the cost of the
// 5 s refills. Every answer must agree between the stores, and every cache
// must be following its feed, or the benchmark fails.
func BenchmarkCheckEtcd(b *testing.B) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := time.Now()
	d := policy.GenerateBenchData(1)
	model, err := policy.LoadModel(d.Model)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("data set: %d tuples, %d sample checks, built in %v", len(d.Tuples), len(d.Checks), time.Since(start).Round(time.Millisecond))

	bst, err := badger.Open(b.TempDir(), badger.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer bst.Close()
	b.Logf("badger: loaded in %v", p3eLoad(b, bst, d.Tuples, 1).Round(time.Millisecond))

	p := etcdtest.Start(b)
	est, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/p3e/", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer est.Close()
	b.Logf("etcd: loaded in %v", p3eLoad(b, est, d.Tuples, 8).Round(time.Millisecond))

	type side struct {
		name  string
		cache *tuplecache.Cache
		eng   *policy.Engine
	}
	sides := []*side{{name: "badger"}, {name: "etcd"}, {name: "badgerheld"}, {name: "etcdheld"}}
	for i, st := range []interface {
		store.Tuples
		store.Changes
	}{bst, est, bst, est} {
		opts := tuplecache.Options{Feed: st, Logger: quiet}
		if i >= 2 {
			opts.MaxAge = time.Hour
		}
		c := tuplecache.New(st, opts)
		defer c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for !c.Following() {
			if time.Now().After(deadline) {
				b.Fatalf("%s: the tuple cache is not following the feed after 10 s", sides[i].name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		sides[i].cache, sides[i].eng = c, policy.New(model, c)
	}

	// Warm both caches with every sample question; the answers must agree.
	answers := make([][]bool, len(sides))
	for i, s := range sides {
		t0 := time.Now()
		for _, q := range d.Checks {
			ok, err := s.eng.Check(ctx, q.Subject, q.Relation, q.Object)
			if err != nil {
				b.Fatalf("%s: Check(%s, %s, %s): %v", s.name, q.Subject, q.Relation, q.Object, err)
			}
			answers[i] = append(answers[i], ok)
		}
		b.Logf("%s: warm-up pass over %d questions in %v", s.name, len(d.Checks), time.Since(t0).Round(time.Millisecond))
	}
	allowed := 0
	for j, q := range d.Checks {
		for k := 1; k < len(sides); k++ {
			if answers[0][j] != answers[k][j] {
				b.Fatalf("Check(%s, %s, %s): badger %v, %s %v", q.Subject, q.Relation, q.Object, answers[0][j], sides[k].name, answers[k][j])
			}
		}
		if answers[0][j] {
			allowed++
		}
	}
	if allowed < len(d.Checks)/4 || allowed > len(d.Checks)*3/4 {
		b.Fatalf("%d of %d sample checks allowed; want a mix", allowed, len(d.Checks))
	}

	for i := 0; i < b.N; i++ {
		for _, callers := range []int{1, 16} {
			for k, s := range sides {
				lat, elapsed := p3eRun(b, s.eng, d.Checks, answers[k], callers, p3eChecks[callers])
				if !s.cache.Following() {
					b.Fatalf("%s: the tuple cache stopped following its feed", s.name)
				}
				sort.Slice(lat, func(a, c int) bool { return lat[a] < lat[c] })
				q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
				tag := fmt.Sprintf("%s%d", s.name, callers)
				b.ReportMetric(q(0.50), tag+"_p50_ms")
				b.ReportMetric(q(0.99), tag+"_p99_ms")
				b.ReportMetric(q(1), tag+"_max_ms")
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), tag+"_checks/s")
			}
		}
	}
}

// p3eLoad writes tuples in 10k-tuple calls from workers goroutines.
func p3eLoad(b *testing.B, st store.Tuples, tuples []store.Tuple, workers int) time.Duration {
	const chunk = 10000
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)-1) * chunk
				if i >= len(tuples) {
					return
				}
				if err := st.WriteTuples(context.Background(), tuples[i:min(i+chunk, len(tuples))], nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// p3eRun asks n Checks from callers goroutines, cycling through qs, and
// fails on any error or any answer other than want's.
func p3eRun(b *testing.B, eng *policy.Engine, qs []policy.CheckQuery, want []bool, callers, n int) ([]time.Duration, time.Duration) {
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Value
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil || time.Since(start) > p3eLimit {
					return
				}
				q := qs[i%len(qs)]
				t0 := time.Now()
				ok, err := eng.Check(ctx, q.Subject, q.Relation, q.Object)
				lat[i] = time.Since(t0)
				if err == nil && ok != want[i%len(qs)] {
					err = fmt.Errorf("Check(%s, %s, %s) = %v, the warm-up said %v", q.Subject, q.Relation, q.Object, ok, want[i%len(qs)])
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	// Keep only the checks that ran (a pass cut short by p3eLimit).
	done := 0
	for i := range lat {
		if lat[i] != 0 {
			done = i + 1
		}
	}
	return lat[:done], elapsed
}
