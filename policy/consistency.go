package policy

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/store"
)

// universe is every subject and object a fixture mentions.
type universe struct {
	subjects map[string]bool            // every subject: plain, wildcard, userset
	objects  map[string]map[string]bool // type -> objects of that type
}

func fixtureUniverse(f *fixture, tuples []store.Tuple) universe {
	u := universe{subjects: map[string]bool{}, objects: map[string]map[string]bool{}}
	addObj := func(o string) {
		if typ, _, ok := splitObject(o); ok && !strings.HasSuffix(o, ":*") {
			if u.objects[typ] == nil {
				u.objects[typ] = map[string]bool{}
			}
			u.objects[typ][o] = true
		}
	}
	addSubj := func(s string) {
		u.subjects[s] = true
		addObj(parseSubjectFast(s).obj)
	}
	for _, t := range tuples {
		addObj(t.Object)
		addSubj(t.Subject)
	}
	for _, c := range f.Checks {
		addSubj(c.Subject)
		addObj(c.Object)
	}
	for _, l := range f.ListObjects {
		addSubj(l.Subject)
	}
	for _, l := range f.ListUsers {
		addObj(l.Object)
	}
	return u
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkConsistency asserts that the list answers agree with Check over
// everything the fixture mentions. Depth-limit errors are tolerated only
// in fixtures that set max_depth, and an object whose Check failed must
// not be listed.
func checkConsistency(t *testing.T, e *Engine, f *fixture, tuples []store.Tuple) {
	ctx := f.request(context.Background(), nil)
	u := fixtureUniverse(f, tuples)
	m := e.Model()
	tolerable := func(err error) bool { return f.MaxDepth > 0 && errors.Is(err, ErrDepthExceeded) }
	for _, s := range sortedKeys(u.subjects) {
		for _, typ := range m.Types() {
			for _, rel := range m.Relations(typ) {
				got, err := e.ListObjects(ctx, s, rel, typ)
				if err != nil {
					if !tolerable(err) {
						t.Errorf("consistency: ListObjects(%s, %s, %s): %v", s, rel, typ, err)
					}
					continue
				}
				var want []string
				for _, o := range sortedKeys(u.objects[typ]) {
					ok, err := e.Check(ctx, s, rel, o)
					switch {
					case err != nil && !tolerable(err):
						t.Errorf("consistency: Check(%s, %s, %s): %v", s, rel, o, err)
					case err != nil && slices.Contains(got, o):
						t.Errorf("consistency: ListObjects(%s, %s, %s) lists %s, whose Check failed: %v", s, rel, typ, o, err)
					case ok:
						want = append(want, o)
					}
				}
				if !sameSet(got, want) {
					t.Errorf("consistency: ListObjects(%s, %s, %s) = %v, but Check is true for %v", s, rel, typ, got, want)
				}
			}
		}
	}
	checkListUsers(t, e, u, ctx, tolerable)
}

// checkListUsers: a subject Check accepts is listed (itself, or its
// type's wildcard), and a subject listed by name is accepted by Check.
func checkListUsers(t *testing.T, e *Engine, u universe, ctx context.Context, tolerable func(error) bool) {
	m := e.Model()
	kinds := map[string][]string{} // subject type ("user", "group#member") -> subjects
	for _, s := range sortedKeys(u.subjects) {
		p := parseSubjectFast(s)
		k := p.typ
		if p.userset() {
			k += "#" + p.rel
		}
		kinds[k] = append(kinds[k], s)
	}
	for _, typ := range m.Types() {
		for _, o := range sortedKeys(u.objects[typ]) {
			for _, rel := range m.Relations(typ) {
				for _, kind := range sortedKeys(boolSet(kinds)) {
					got, err := e.ListUsers(ctx, o, rel, kind)
					if err != nil {
						if !tolerable(err) {
							t.Errorf("consistency: ListUsers(%s, %s, %s): %v", o, rel, kind, err)
						}
						continue
					}
					for _, s := range kinds[kind] {
						ok, err := e.Check(ctx, s, rel, o)
						if err != nil {
							continue // reported by the ListObjects pass
						}
						named := slices.Contains(got, s)
						wild := !strings.Contains(kind, "#") && slices.Contains(got, kind+":*")
						if ok && !named && !wild {
							t.Errorf("consistency: Check(%s, %s, %s) is true but ListUsers(.., %s) = %v", s, rel, o, kind, got)
						}
						if named && !ok {
							t.Errorf("consistency: ListUsers(%s, %s, %s) lists %s, but Check is false", o, rel, kind, s)
						}
					}
				}
			}
		}
	}
}

func boolSet[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
