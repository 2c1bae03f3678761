package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/tuplecache"
)

// checkFunc answers one Check question.
type checkFunc func(ctx context.Context, q policy.CheckQuery) (bool, error)

// listFunc answers the ListObjects question.
type listFunc func(ctx context.Context) ([]string, error)

// phase is what one measured phase produced.
type phase struct {
	p50, p99 time.Duration
	rate     float64 // operations per second
	n        int     // operations measured
	errs     int     // failed operations (not in the latencies)
	wrong    int     // answers that disagree with the reference
	ok       bool    // the phase ran
}

// results are one engine's figures.
type results struct {
	check map[int]phase // by number of callers
	list  phase
	load  time.Duration
	note  string // why figures are missing, if they are
}

var callerCounts = []int{1, 16}

func main() {
	ofgaBin := flag.String("openfga", "", "path of the openfga binary (v1.22.1); empty skips OpenFGA")
	seed := flag.Int64("seed", 1, "seed of the data set")
	dur := flag.Duration("duration", 10*time.Second, "how long each Check phase runs")
	out := flag.String("out", "", "also write the report to this file")
	lists := flag.Int("lists", 10, "ListObjects runs per engine (bounded by -duration as well)")
	datastore := flag.String("openfga-datastore", "sqlite", "OpenFGA datastore: sqlite, or memory (loading 1M tuples into it takes hours)")
	workers := flag.Int("load-workers", 4, "concurrent OpenFGA write requests while loading")
	batch := flag.Int("load-batch", 100, "tuples per OpenFGA write request (its default limit is 100)")
	loadTimeout := flag.Duration("load-timeout", 20*time.Minute, "give up loading OpenFGA after this long")
	extra := flag.String("openfga-flags", "", "extra flags for openfga run, space-separated (e.g. --check-query-cache-enabled)")
	mem := flag.Bool("mem", true, "also measure the engine over an in-memory reader")
	reopen := flag.Bool("reopen", true, "close and reopen the badger store after loading it")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	cond := flag.Bool("cond", false, "run the conditional comparison (GenerateCondBenchData) instead; fails on any disagreement")
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "policycmp:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	oo := ofgaOptions{
		datastore: *datastore, extra: strings.Fields(*extra), workers: *workers, batch: *batch, loadTimeout: *loadTimeout,
	}
	var err error
	if *cond {
		err = runCond(*ofgaBin, *seed, *out, oo)
	} else {
		err = run(*ofgaBin, *seed, *dur, *out, *lists, *mem, *reopen, oo)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "policycmp:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "policycmp: "+format+"\n", args...)
}

func run(ofgaBin string, seed int64, dur time.Duration, out string, lists int, mem, reopen bool, oo ofgaOptions) error {
	ctx := context.Background()
	t0 := time.Now()
	d := policy.GenerateBenchData(seed)
	logf("data set: %d tuples, %d sample checks, ListObjects subject %s reaches %d resources (generated in %v)",
		len(d.Tuples), len(d.Checks), d.ListSubject, len(d.ListExpected), time.Since(t0).Round(time.Millisecond))
	model, err := policy.LoadModel(d.Model)
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "policycmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The bastion over the real badger store.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	st, err := badger.Open(dir+"/badger", badger.Options{Logger: quiet})
	if err != nil {
		return err
	}
	defer st.Close()
	t0 = time.Now()
	for i := 0; i < len(d.Tuples); i += 10000 {
		if err := st.WriteTuples(ctx, d.Tuples[i:min(i+10000, len(d.Tuples))], nil); err != nil {
			return err
		}
	}
	ours := results{load: time.Since(t0)}
	logf("badger: loaded in %v", ours.load.Round(time.Millisecond))
	if reopen {
		// Measure a bastion restarted on its data, not one in the middle
		// of a bulk load (memtables still filling, L0 not compacted).
		if err := st.Close(); err != nil {
			return err
		}
		if st, err = badger.Open(dir+"/badger", badger.Options{Logger: quiet}); err != nil {
			return err
		}
		defer st.Close()
	}
	// The bastion runs the engine over the tuple cache in front of badger.
	eng := policy.New(model, tuplecache.New(st, tuplecache.Options{}))
	check := func(ctx context.Context, q policy.CheckQuery) (bool, error) {
		return eng.Check(ctx, q.Subject, q.Relation, q.Object)
	}
	// The reference answers, which also warms the store's caches.
	want := make([]bool, len(d.Checks))
	for i, q := range d.Checks {
		if want[i], err = check(ctx, q); err != nil {
			return fmt.Errorf("bastion check %v: %w", q, err)
		}
	}
	listOurs := func(ctx context.Context) ([]string, error) {
		return eng.ListObjects(ctx, d.ListSubject, "view", "resource")
	}
	measure(ctx, "bastion", &ours, d, want, check, listOurs, dur, lists)

	var inmem *results
	if mem {
		me := policy.New(model, newMemReader(d.Tuples))
		r := results{}
		measure(ctx, "bastion-mem", &r, d, want, func(ctx context.Context, q policy.CheckQuery) (bool, error) {
			return me.Check(ctx, q.Subject, q.Relation, q.Object)
		}, func(ctx context.Context) ([]string, error) {
			return me.ListObjects(ctx, d.ListSubject, "view", "resource")
		}, dur, lists)
		inmem = &r
	}

	theirs := results{note: "not run (no -openfga)"}
	if ofgaBin != "" {
		theirs = runOpenFGA(ctx, ofgaBin, dir, d, want, dur, lists, oo)
	}

	w := io.Writer(os.Stdout)
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	report(w, d, ours, theirs, inmem, oo)
	return nil
}

// measure runs the Check phases and the ListObjects runs into r.
func measure(ctx context.Context, name string, r *results, d policy.BenchData, want []bool,
	check checkFunc, list listFunc, dur time.Duration, lists int) {
	r.check = map[int]phase{}
	for _, c := range callerCounts {
		p := runChecks(ctx, d.Checks, want, c, dur, check)
		r.check[c] = p
		logf("%s: %2d callers: %d checks, p50 %v, p99 %v, %.0f checks/s, %d errors, %d wrong",
			name, c, p.n, p.p50, p.p99, p.rate, p.errs, p.wrong)
	}
	r.list = runLists(ctx, lists, dur, len(d.ListExpected), list)
	logf("%s: ListObjects: %d runs, p50 %v, %d errors, %d wrong counts", name, r.list.n, r.list.p50, r.list.errs, r.list.wrong)
}

// runChecks has callers goroutines cycle through qs for dur.
func runChecks(ctx context.Context, qs []policy.CheckQuery, want []bool, callers int, dur time.Duration, check checkFunc) phase {
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var errs, wrong int
	var firstErr error
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			var e, bad int
			var fe error
			for time.Now().Before(deadline) {
				i := int(next.Add(1)-1) % len(qs)
				t := time.Now()
				ok, err := check(ctx, qs[i])
				el := time.Since(t)
				switch {
				case err != nil:
					e++
					if fe == nil {
						fe = err
					}
				default:
					local = append(local, el)
					if ok != want[i] {
						bad++
					}
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			errs, wrong = errs+e, wrong+bad
			if firstErr == nil {
				firstErr = fe
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		logf("first check error: %v", firstErr)
	}
	p := percentiles(lat)
	p.rate = float64(len(lat)) / elapsed.Seconds()
	p.errs, p.wrong = errs, wrong
	return p
}

// runLists runs list up to runs times, stopping after dur (at least once).
func runLists(ctx context.Context, runs int, dur time.Duration, wantN int, list listFunc) phase {
	var lat []time.Duration
	var errs, wrong int
	start := time.Now()
	for i := 0; i < runs && (i == 0 || time.Since(start) < dur); i++ {
		t := time.Now()
		got, err := list(ctx)
		el := time.Since(t)
		if err != nil {
			errs++
			logf("ListObjects: %v", err)
			continue
		}
		lat = append(lat, el)
		if len(got) != wantN {
			wrong++
			logf("ListObjects returned %d objects, want %d", len(got), wantN)
		}
	}
	p := percentiles(lat)
	p.errs, p.wrong = errs, wrong
	return p
}

func percentiles(lat []time.Duration) phase {
	if len(lat) == 0 {
		return phase{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	return phase{p50: at(0.50), p99: at(0.99), n: len(lat), ok: true}
}

// memReader is a policy.TupleReader over two maps, for the in-memory figure.
type memReader struct {
	byObject, bySubject map[[2]string][]store.Tuple
}

func newMemReader(ts []store.Tuple) *memReader {
	r := &memReader{byObject: map[[2]string][]store.Tuple{}, bySubject: map[[2]string][]store.Tuple{}}
	for _, t := range ts {
		typ, _, _ := strings.Cut(t.Object, ":")
		ko, ks := [2]string{t.Object, t.Relation}, [2]string{t.Subject, typ}
		r.byObject[ko] = append(r.byObject[ko], t)
		r.bySubject[ks] = append(r.bySubject[ks], t)
	}
	return r
}

func (r *memReader) TuplesByObject(_ context.Context, object, relation string) ([]store.Tuple, error) {
	return r.byObject[[2]string{object, relation}], nil
}

func (r *memReader) TuplesBySubject(_ context.Context, subject, objectType string) ([]store.Tuple, error) {
	return r.bySubject[[2]string{subject, objectType}], nil
}
