package policy

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzLoadModel: loading never panics, and a model that loads can be
// loaded again from its own source with the same types and relations.
// Seeds: testdata/fuzz/FuzzLoadModel and the fixtures' models.
func FuzzLoadModel(f *testing.F) {
	f.Add(DefaultModel)
	f.Add(docModel)
	f.Fuzz(func(t *testing.T, dsl string) {
		m, err := LoadModel(dsl)
		if err != nil {
			var me *ModelError
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *ModelError: %v", err, err)
			}
			return
		}
		again, err := LoadModel(m.Source())
		if err != nil {
			t.Fatalf("reloading a loaded model: %v", err)
		}
		for _, typ := range m.Types() {
			if len(again.Relations(typ)) != len(m.Relations(typ)) {
				t.Fatalf("type %s: relations differ on reload", typ)
			}
		}
	})
}

// FuzzParseTuple: parsing never panics, and whatever parses round-trips
// through String.
func FuzzParseTuple(f *testing.F) {
	f.Add("resource:web-1#act@user:alice")
	f.Add("project:p#member@group:ops#member")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTuple(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if tp.String() != s {
			t.Fatalf("ParseTuple(%q).String() = %q", s, tp.String())
		}
		again, err := ParseTuple(tp.String())
		if err != nil || !reflect.DeepEqual(again, tp) {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		if err := ValidateSubject(tp.Subject); err != nil {
			t.Fatalf("parsed subject %q is invalid: %v", tp.Subject, err)
		}
	})
}
