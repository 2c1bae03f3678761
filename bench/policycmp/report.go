package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sshbastion/bastion/policy"
)

// report prints the comparison table and the notes under it.
func report(w io.Writer, d policy.BenchData, ours, theirs results, inmem *results, oo ofgaOptions) {
	ms := func(p phase, v time.Duration) string {
		if !p.ok {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", float64(v.Microseconds())/1000)
	}
	rate := func(p phase) string {
		if !p.ok {
			return "n/a"
		}
		return fmt.Sprintf("%.0f", p.rate)
	}
	// ratio is how many times better the bastion is.
	ratio := func(a, b phase, better float64) string {
		if !a.ok || !b.ok || better <= 0 || isInf(better) {
			return "n/a"
		}
		return fmt.Sprintf("%.1fx", better)
	}
	lat := func(a, b phase, f func(phase) time.Duration) string {
		if f(a) <= 0 {
			return ratio(a, b, 0)
		}
		return ratio(a, b, float64(f(b))/float64(f(a)))
	}
	verdict := func(okGoal bool, known bool) string {
		if !known {
			return ""
		}
		if okGoal {
			return " (met)"
		}
		return " (MISSED)"
	}
	p50 := func(p phase) time.Duration { return p.p50 }
	p99 := func(p phase) time.Duration { return p.p99 }
	fmt.Fprintf(w, "\n== policy: bastion engine (badger store) vs OpenFGA v1.22.1 (%s datastore), %d tuples\n", oo.datastore, len(d.Tuples))
	fmt.Fprintln(w, "| metric | bastion | openfga | ratio | goal |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, c := range callerCounts {
		a, b := ours.check[c], theirs.check[c]
		fmt.Fprintf(w, "| Check p50 ms, %d callers | %s | %s | %s | - |\n", c, ms(a, a.p50), ms(b, b.p50), lat(a, b, p50))
		fmt.Fprintf(w, "| Check p99 ms, %d callers | %s | %s | %s | <= 1 ms%s |\n", c, ms(a, a.p99), ms(b, b.p99), lat(a, b, p99),
			verdict(a.p99 <= time.Millisecond, a.ok))
		r := 0.0
		if b.rate > 0 {
			r = a.rate / b.rate
		}
		fmt.Fprintf(w, "| checks/s, %d callers | %s | %s | %s | >= 10x openfga%s |\n", c, rate(a), rate(b), ratio(a, b, r),
			verdict(r >= 10, a.ok && b.ok))
	}
	a, b := ours.list, theirs.list
	fmt.Fprintf(w, "| ListObjects p50 ms, %d objects | %s | %s | %s | <= 20 ms%s |\n", len(d.ListExpected),
		ms(a, a.p50), ms(b, b.p50), lat(a, b, p50), verdict(a.p50 <= 20*time.Millisecond, a.ok))
	fmt.Fprintln(w, "ratio: how many times better the bastion is (openfga latency / bastion latency; bastion checks/s / openfga checks/s)")
	if inmem != nil {
		fmt.Fprint(w, "bastion engine over an in-memory reader (no store):")
		for _, c := range callerCounts {
			p := inmem.check[c]
			fmt.Fprintf(w, " %d callers p50 %s ms p99 %s ms %s checks/s;", c, ms(p, p.p50), ms(p, p.p99), rate(p))
		}
		fmt.Fprintf(w, " ListObjects p50 %s ms\n", ms(inmem.list, inmem.list.p50))
	}
	fmt.Fprintf(w, "load: bastion badger %.1f s (WriteTuples, 10k per call); openfga %s\n", ours.load.Seconds(), theirs.loadNote(oo))
	fmt.Fprintf(w, "answers: bastion %s; openfga %s\n", ours.agreement(), theirs.agreement())
	if theirs.note != "" {
		fmt.Fprintf(w, "openfga: %s\n", theirs.note)
	}
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s\n", numCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version())
}

func isInf(f float64) bool { return f > 1e300 }

func (r results) loadNote(oo ofgaOptions) string {
	if r.load == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f s (%d tuples per write, %d concurrent writes)", r.load.Seconds(), oo.batch, oo.workers)
}

// agreement summarises errors and answers that disagree with the bastion's.
func (r results) agreement() string {
	if r.check == nil {
		return "n/a"
	}
	var errs, wrong int
	for _, p := range r.check {
		errs, wrong = errs+p.errs, wrong+p.wrong
	}
	return fmt.Sprintf("%d check errors, %d checks disagreeing, %d list errors, %d wrong list sizes", errs, wrong, r.list.errs, r.list.wrong)
}

func numCPU() int { return runtime.NumCPU() }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
