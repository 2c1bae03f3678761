package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/sshbastion/bastion/policy"
)

// condReport is what -cond measured.
type condReport struct {
	d                      policy.CondBenchData
	nCond                  int
	res                    map[string][3]condPhase
	ours, theirs           string
	disagree, listDisagree int
	listErrs               int
	oursList, theirsList   phase
	oursLoad, theirsLoad   time.Duration
	diffs                  []string
	oo                     ofgaOptions
}

// write prints the report to stdout and, if out is set, to that file.
func (r condReport) write(out string) error {
	w := io.Writer(os.Stdout)
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	ms := func(v time.Duration) string { return fmt.Sprintf("%.3f", float64(v.Microseconds())/1000) }
	times := func(a, b float64) string {
		if a <= 0 || b <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1fx", a/b)
	}
	a, b := r.res[r.ours], r.res[r.theirs]
	fmt.Fprintf(w, "\n== policycond: bastion engine (badger store) vs OpenFGA v1.22.1 (%s datastore) on conditional data: %d tuples, %d conditional\n",
		r.oo.datastore, len(r.d.Tuples), r.nCond)
	fmt.Fprintln(w, "| metric | bastion | openfga | ratio | goal |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, pi := range []int{1, 2} {
		c := map[int]int{1: 1, 2: 16}[pi]
		pa, pb := a[pi], b[pi]
		fmt.Fprintf(w, "| Check p50 ms, %d callers | %s | %s | %s | - |\n", c, ms(pa.p50), ms(pb.p50), times(float64(pb.p50), float64(pa.p50)))
		fmt.Fprintf(w, "| Check p99 ms, %d callers | %s | %s | %s | <= 1 ms%s |\n", c, ms(pa.p99), ms(pb.p99),
			times(float64(pb.p99), float64(pa.p99)), met(pa.p99 <= time.Millisecond))
		fmt.Fprintf(w, "| checks/s, %d callers | %.0f | %.0f | %s | >= 10x openfga%s |\n", c, pa.rate, pb.rate,
			times(pa.rate, pb.rate), met(pb.rate > 0 && pa.rate >= 10*pb.rate))
	}
	fmt.Fprintf(w, "| ListObjects p50 ms (%d lists with context) | %s | %s | %s | - |\n", len(r.d.Lists),
		ms(r.oursList.p50), ms(r.theirsList.p50), times(float64(r.theirsList.p50), float64(r.oursList.p50)))
	fmt.Fprintln(w, "ratio: how many times better the bastion is; each pass asks every question once (1 caller: pass 2; 16 callers: pass 3)")

	// What the questions covered, by request context (the bastion's
	// first-pass answers, which every other pass and OpenFGA matched).
	fmt.Fprintln(w, "answers by request context (allowed / denied / condition error):")
	type tally struct{ yes, no, errs int }
	by := map[string]*tally{}
	withContextual := 0
	for i, q := range r.d.Checks {
		t := by[q.ContextName]
		if t == nil {
			t = &tally{}
			by[q.ContextName] = t
		}
		switch a[0].answers[i] {
		case allowed:
			t.yes++
		case denied:
			t.no++
		default:
			t.errs++
		}
		if len(q.Contextual) > 0 {
			withContextual++
		}
	}
	for _, name := range r.d.Contexts {
		if t := by[name]; t != nil {
			fmt.Fprintf(w, "  %-13s %4d / %4d / %4d\n", name, t.yes, t.no, t.errs)
		}
	}
	fmt.Fprintf(w, "answers: %d checks (%d with contextual tuples) x 3 passes per engine, %d disagreeing; %d lists, %d disagreeing (%d errors on both sides)\n",
		len(r.d.Checks), withContextual, r.disagree, len(r.d.Lists), r.listDisagree, r.listErrs)
	for _, d := range r.diffs {
		fmt.Fprintln(w, "  DISAGREE:", d)
	}
	fmt.Fprintf(w, "load: bastion badger %.2f s (one WriteTuples); openfga %.1f s (%d tuples per write, %d concurrent writes)\n",
		r.oursLoad.Seconds(), r.theirsLoad.Seconds(), r.oo.batch, r.oo.workers)
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s\n", numCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version())
	return nil
}

func met(ok bool) string {
	if ok {
		return " (met)"
	}
	return " (MISSED)"
}
