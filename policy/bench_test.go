package policy

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var smallShape = benchShape{domains: 3, projects: 10, resources: 1000, users: 1000,
	groupsTop: 5, groupsMid: 20, groupsLeaf: 75, leavesPerUser: 4, actPerResource: 9, listTarget: 100}

// TestBenchDataAgainstOracle builds a small data set of the benchmark's
// shape and checks the engine against what the generator knows it built.
func TestBenchDataAgainstOracle(t *testing.T) {
	d := generateBenchData(7, smallShape)
	if again := generateBenchData(7, smallShape); !reflect.DeepEqual(again.Tuples, d.Tuples) || !slices.Equal(again.Checks, d.Checks) {
		t.Fatal("the generator is not deterministic")
	}
	m, err := LoadModel(d.Model)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range d.Tuples {
		if err := m.ValidateTuple(tp); err != nil {
			t.Fatal(err)
		}
	}
	e := New(m, newMemReader(d.Tuples))
	ctx := context.Background()
	got, err := e.ListObjects(ctx, d.ListSubject, "view", "resource")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, d.ListExpected) {
		t.Fatalf("ListObjects(%s, view, resource): %d objects, the generator says %d", d.ListSubject, len(got), len(d.ListExpected))
	}
	if len(got) < smallShape.listTarget/2 || len(got) > smallShape.listTarget*2 {
		t.Errorf("list subject reaches %d resources, want about %d", len(got), smallShape.listTarget)
	}
	// Every expected resource passes Check; a sample of the others does not.
	want := map[string]bool{}
	for _, r := range d.ListExpected {
		want[r] = true
	}
	for i := 0; i < smallShape.resources; i += 7 {
		r := fmt.Sprintf("resource:r%05d", i)
		ok, err := e.Check(ctx, d.ListSubject, "view", r)
		if err != nil || ok != want[r] {
			t.Fatalf("Check(%s, view, %s) = %v, %v; want %v", d.ListSubject, r, ok, err, want[r])
		}
	}
	allowed := 0
	for _, q := range d.Checks {
		ok, err := e.Check(ctx, q.Subject, q.Relation, q.Object)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		}
	}
	if allowed < len(d.Checks)/4 || allowed > len(d.Checks)*3/4 {
		t.Errorf("%d of %d sample checks allowed; want a mix", allowed, len(d.Checks))
	}
}

var (
	benchOnce   sync.Once
	benchData   BenchData
	benchEngine *Engine
)

func benchSetup(b *testing.B) {
	benchOnce.Do(func() {
		start := time.Now()
		benchData = GenerateBenchData(1)
		m, err := LoadModel(benchData.Model)
		if err != nil {
			panic(err)
		}
		benchEngine = New(m, newMemReader(benchData.Tuples))
		b.Logf("data set: %d tuples, built in %v", len(benchData.Tuples), time.Since(start))
	})
}

// report sorts latencies and reports p50, p99 and throughput.
func report(b *testing.B, lat []time.Duration, elapsed time.Duration, unit string) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(p(0.50), "p50-ns")
	b.ReportMetric(p(0.99), "p99-ns")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), unit+"/s")
}

func BenchmarkCheck(b *testing.B) {
	benchSetup(b)
	for _, callers := range []int{1, 16} {
		b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) { benchCheck(b, callers) })
	}
}

func benchCheck(b *testing.B, callers int) {
	ctx := context.Background()
	qs := benchData.Checks
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0))) // goroutines = parallelism * GOMAXPROCS
	if callers == 1 {
		b.SetParallelism(1)
	}
	b.ResetTimer()
	start := time.Now()
	run := func(n func() bool) {
		local := make([]time.Duration, 0, 1024)
		for n() {
			q := qs[int(next.Add(1))%len(qs)]
			t0 := time.Now()
			if _, err := benchEngine.Check(ctx, q.Subject, q.Relation, q.Object); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	}
	if callers == 1 {
		i := 0
		run(func() bool { i++; return i <= b.N })
	} else {
		b.RunParallel(func(pb *testing.PB) { run(pb.Next) })
	}
	elapsed := time.Since(start)
	b.StopTimer()
	report(b, lat, elapsed, "checks")
}

func BenchmarkListObjects(b *testing.B) {
	benchSetup(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	n := 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		got, err := benchEngine.ListObjects(ctx, benchData.ListSubject, "view", "resource")
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		n = len(got)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n != len(benchData.ListExpected) {
		b.Fatalf("ListObjects found %d resources, the generator says %d", n, len(benchData.ListExpected))
	}
	b.ReportMetric(float64(n), "objects")
	report(b, lat, elapsed, "lists")
}
