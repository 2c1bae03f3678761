package policy

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sshbastion/bastion/store"
)

// The fixtures are embedded so that RunFixtures works from any package's
// tests (store backends run them against their own TupleReader).
//
//go:embed testdata/*.yaml
var fixtureFS embed.FS

// fixture is one testdata/*.yaml file: a model, tuples and expectations.
type fixture struct {
	Name        string          `yaml:"name"`
	Model       string          `yaml:"model"` // empty: DefaultModel
	MaxDepth    int             `yaml:"max_depth"`
	Tuples      []fixtureTuple  `yaml:"tuples"`
	Checks      []fixtureCheck  `yaml:"checks"`
	ListObjects []fixtureList   `yaml:"list_objects"`
	ListUsers   []fixtureUsers  `yaml:"list_users"`
	Expand      []fixtureExpand `yaml:"expand"`
	// Context is the request context every question is asked with
	// (conditions read it); a check may give its own.
	Context map[string]any `yaml:"context"`
}

// request is the context every question of the fixture is asked in.
func (f *fixture) request(ctx context.Context, own map[string]any) context.Context {
	c := f.Context
	if own != nil {
		c = own
	}
	if c == nil {
		return ctx
	}
	return WithRequest(ctx, Request{Context: jsonValues(c)})
}

// jsonValues turns what YAML decoded (ints among others) into what JSON
// decodes, which is what tuple and request contexts hold.
func jsonValues(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// fixtureTuple is "object#relation@subject", or a mapping with tuple,
// expires (RFC 3339, or a duration relative to now such as -1h) and
// unchecked (write it although the model does not allow it).
type fixtureTuple struct {
	Tuple     string         `yaml:"tuple"`
	Expires   string         `yaml:"expires"`
	Unchecked bool           `yaml:"unchecked"`
	Condition string         `yaml:"condition"`
	Context   map[string]any `yaml:"context"`
}

func (f *fixtureTuple) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		f.Tuple = n.Value
		return nil
	}
	type plain fixtureTuple
	return n.Decode((*plain)(f))
}

type fixtureCheck struct {
	Subject  string         `yaml:"subject"`
	Relation string         `yaml:"relation"`
	Object   string         `yaml:"object"`
	Allowed  bool           `yaml:"allowed"`
	Error    string         `yaml:"error"`   // "depth": expect ErrDepthExceeded; "condition": ErrCondition
	Context  map[string]any `yaml:"context"` // instead of the fixture's
}

type fixtureList struct {
	Subject  string   `yaml:"subject"`
	Relation string   `yaml:"relation"`
	Type     string   `yaml:"type"`
	Objects  []string `yaml:"objects"`
	Error    string   `yaml:"error"`
}

type fixtureUsers struct {
	Object   string   `yaml:"object"`
	Relation string   `yaml:"relation"`
	Type     string   `yaml:"type"`
	Users    []string `yaml:"users"`
}

// fixtureExpand expects the tree of object#relation to mention (contain)
// and not to mention (omit) some strings.
type fixtureExpand struct {
	Object   string   `yaml:"object"`
	Relation string   `yaml:"relation"`
	Contains []string `yaml:"contains"`
	Omits    []string `yaml:"omits"`
}

// RunFixtures runs every testdata/*.yaml fixture against the TupleReader
// that newReader builds from the fixture's tuples. The reader must hide
// tuples whose Expires is in the past, as store.Tuples does. Besides each
// fixture's own expectations it checks that, for every subject, relation
// and object type the fixture mentions, ListObjects returns exactly the
// objects for which Check is true (and ListUsers likewise).
func RunFixtures(t *testing.T, newReader func(t *testing.T, tuples []store.Tuple) TupleReader) {
	t.Helper()
	names, err := fs.Glob(fixtureFS, "testdata/*.yaml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, name := range names {
		t.Run(strings.TrimSuffix(path.Base(name), ".yaml"), func(t *testing.T) {
			raw, err := fixtureFS.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var f fixture
			if err := yaml.Unmarshal(raw, &f); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			runFixture(t, &f, newReader)
		})
	}
}

func runFixture(t *testing.T, f *fixture, newReader func(t *testing.T, tuples []store.Tuple) TupleReader) {
	dsl := f.Model
	if dsl == "" {
		dsl = DefaultModel
	}
	m, err := LoadModel(dsl)
	if err != nil {
		t.Fatalf("model: %v", err)
	}
	tuples, err := f.tuples(m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := New(m, newReader(t, tuples), WithMaxDepth(f.MaxDepth))
	ctx := f.request(context.Background(), nil)
	for _, c := range f.Checks {
		q := fmt.Sprintf("Check(%s, %s, %s)", c.Subject, c.Relation, c.Object)
		cctx := f.request(context.Background(), c.Context)
		ok, err := e.Check(cctx, c.Subject, c.Relation, c.Object)
		if !wantErr(t, q, err, c.Error) {
			continue
		}
		if ok != c.Allowed {
			t.Errorf("%s = %v, want %v", q, ok, c.Allowed)
		}
		x, err := e.Explain(cctx, c.Subject, c.Relation, c.Object)
		switch {
		case err != nil:
			t.Errorf("Explain: %s: %v", q, err)
		case x.Allowed != ok:
			t.Errorf("Explain disagrees with %s:\n%s", q, x)
		case ok && !reachesSubject(x):
			t.Errorf("Explain of %s does not lead to the subject:\n%s", q, x)
		case !ok && len(x.Tried) == 0:
			t.Errorf("Explain of denied %s lists nothing tried", q)
		}
	}
	for _, l := range f.ListObjects {
		q := fmt.Sprintf("ListObjects(%s, %s, %s)", l.Subject, l.Relation, l.Type)
		got, err := e.ListObjects(ctx, l.Subject, l.Relation, l.Type)
		if wantErr(t, q, err, l.Error) && !sameSet(got, l.Objects) {
			t.Errorf("%s = %v, want %v", q, got, l.Objects)
		}
	}
	for _, l := range f.ListUsers {
		got, err := e.ListUsers(ctx, l.Object, l.Relation, l.Type)
		if err != nil {
			t.Errorf("ListUsers(%s, %s, %s): %v", l.Object, l.Relation, l.Type, err)
		} else if !sameSet(got, l.Users) {
			t.Errorf("ListUsers(%s, %s, %s) = %v, want %v", l.Object, l.Relation, l.Type, got, l.Users)
		}
	}
	for _, x := range f.Expand {
		tree, err := e.Expand(ctx, x.Object, x.Relation)
		if err != nil {
			t.Errorf("Expand(%s, %s): %v", x.Object, x.Relation, err)
			continue
		}
		s := tree.String()
		for _, want := range x.Contains {
			if !strings.Contains(s, want) {
				t.Errorf("Expand(%s, %s) lacks %q:\n%s", x.Object, x.Relation, want, s)
			}
		}
		for _, omit := range x.Omits {
			if strings.Contains(s, omit) {
				t.Errorf("Expand(%s, %s) mentions %q:\n%s", x.Object, x.Relation, omit, s)
			}
		}
	}
	checkConsistency(t, e, f, tuples)
}

// wantErr checks err against an expected error ("" for none, "depth" for
// ErrDepthExceeded) and reports whether the result should be examined.
func wantErr(t *testing.T, q string, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v", q, err)
	case want == "depth" && !errors.Is(err, ErrDepthExceeded):
		t.Errorf("%s: error %v, want ErrDepthExceeded", q, err)
	case want == "condition" && !errors.Is(err, ErrCondition):
		t.Errorf("%s: error %v, want ErrCondition", q, err)
	case want != "" && want != "depth" && want != "condition":
		t.Errorf("%s: unknown expected error %q", q, want)
	case want == "":
		return true
	}
	return false
}

func (f *fixture) tuples(m *Model, now time.Time) ([]store.Tuple, error) {
	out := make([]store.Tuple, 0, len(f.Tuples))
	for _, ft := range f.Tuples {
		tp, err := ParseTuple(ft.Tuple)
		if err != nil {
			return nil, err
		}
		tp.Condition, tp.Context = ft.Condition, jsonValues(ft.Context)
		if !ft.Unchecked {
			if err := m.ValidateTuple(tp); err != nil {
				return nil, err
			}
		}
		if ft.Expires != "" {
			if d, err := time.ParseDuration(ft.Expires); err == nil {
				tp.Expires = now.Add(d)
			} else if tp.Expires, err = time.Parse(time.RFC3339, ft.Expires); err != nil {
				return nil, fmt.Errorf("tuple %s: expires %q: %v", ft.Tuple, ft.Expires, err)
			}
		}
		out = append(out, tp)
	}
	return out, nil
}

// reachesSubject reports whether an explanation's path ends at its subject.
func reachesSubject(x Explanation) bool {
	for _, s := range x.Path {
		switch {
		case s.Kind == StepTuple && strings.HasSuffix(s.Tuple, "@"+x.Subject):
			return true
		case s.Kind == StepWildcard && strings.HasSuffix(s.Tuple, "@"+typeOf(x.Subject)+":*"):
			return true
		case s.Kind == StepSelf && s.Node == x.Subject:
			return true
		}
	}
	return false
}

// sameSet reports whether got holds exactly the strings of want, each once.
func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if len(slices.Compact(slices.Clone(g))) != len(g) {
		return false // a list answer must not repeat itself
	}
	return slices.Equal(g, slices.Compact(w))
}
