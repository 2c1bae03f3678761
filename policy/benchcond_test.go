package policy

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestCondBenchData checks the conditional data set the OpenFGA
// comparison loads: deterministic, every tuple writable under the model
// (as OpenFGA's Write validates it), about a tenth of the grants
// conditional, some with a context that clashes with the request's, and
// questions whose answers cover allowed, denied and condition errors.
func TestCondBenchData(t *testing.T) {
	d := GenerateCondBenchData(1)
	if again := GenerateCondBenchData(1); !reflect.DeepEqual(again, d) {
		t.Fatal("GenerateCondBenchData(1) is not deterministic")
	}
	m, err := LoadModel(d.Model)
	if err != nil {
		t.Fatal(err)
	}
	conds, clash := map[string]int{}, 0
	seen := map[string]bool{}
	for _, tu := range d.Tuples {
		if err := m.ValidateTuple(tu); err != nil {
			t.Fatalf("tuple %v: %v", tu, err)
		}
		if seen[tu.String()] {
			t.Fatalf("tuple %v written twice (OpenFGA refuses that)", tu)
		}
		seen[tu.String()] = true
		if tu.Condition != "" {
			conds[tu.Condition]++
			for _, p := range []string{ParamSourceIP, ParamCurrentTime, ParamAuthMethod} {
				if _, ok := tu.Context[p]; ok {
					clash++
				}
			}
		}
	}
	total := conds["from_office"] + conds["shift"] + conds["strong"]
	if len(d.Tuples) < 20000 || len(d.Tuples) > 40000 || total*100 < 4*len(d.Tuples) || total*100 > 15*len(d.Tuples) {
		t.Fatalf("%d tuples, %d conditional (%v): want 20k-40k, 4-15%% conditional", len(d.Tuples), total, conds)
	}
	if conds["from_office"] == 0 || conds["shift"] == 0 || conds["strong"] == 0 || clash < 20 {
		t.Fatalf("conditions %v, %d with a clashing context: want all three, 20+ clashes", conds, clash)
	}
	for _, q := range d.Checks {
		for _, ct := range q.Contextual {
			if err := m.ValidateTuple(ct); err != nil {
				t.Fatalf("contextual tuple %v: %v", ct, err)
			}
		}
	}

	e := New(m, newMemReader(d.Tuples))
	type tally struct{ yes, no, errs int }
	by := map[string]*tally{}
	for _, q := range d.Checks {
		ctx := WithRequest(context.Background(), Request{Context: q.Context, Tuples: q.Contextual})
		ok, err := e.Check(ctx, q.Subject, q.Relation, q.Object)
		tl := by[q.ContextName]
		if tl == nil {
			tl = &tally{}
			by[q.ContextName] = tl
		}
		switch {
		case err != nil && !errors.Is(err, ErrCondition):
			t.Fatalf("%v with %s: %v, want only condition errors", q.CheckQuery, q.ContextName, err)
		case err != nil:
			tl.errs++
		case ok:
			tl.yes++
		default:
			tl.no++
		}
	}
	for _, name := range d.Contexts {
		tl := by[name]
		if tl == nil || tl.yes == 0 || tl.no == 0 {
			t.Errorf("context %s: %+v, want both allowed and denied answers", name, tl)
		}
		wantErrs := name != "inside" && name != "outside" && name != "mixed"
		if tl != nil && (tl.errs > 0) != wantErrs {
			t.Errorf("context %s: %d errors, want errors: %v", name, tl.errs, wantErrs)
		}
	}
	if len(d.Lists) == 0 {
		t.Fatal("no ListObjects questions")
	}
}
