package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/openfga/language/pkg/go/transformer"
)

// Model is a loaded and validated authorization model. It is immutable, so
// one Model may serve any number of goroutines and engines.
type Model struct {
	source string
	types  map[string]*typeDef
	order  []string // type names in declaration order
	rev    reverseIndex
	// conds are the model's conditions, compiled once at load.
	conds map[string]*condition
}

type typeDef struct {
	name      string
	line      int
	relations map[string]*relationDef
	order     []string // relation names in declaration order
}

type relationDef struct {
	typ, name string
	line      int
	rw        *rewrite
	direct    []TypeRef           // who may be written directly (the [ ... ] part)
	allowed   map[refKey]struct{} // the subject types of direct, with or without a condition
	// valid holds the subject types and conditions (cond "" for none) a
	// stored tuple may have here to count: the OpenFGA server's read-time
	// rules, so that the same tuples count here as there.
	valid map[refKey]struct{}
}

// refKey identifies an allowed subject type: {user} for "user", {user, "",
// true} for "user:*", {group, member} for "group#member"; cond names a
// condition in relationDef.valid.
type refKey struct {
	typ, rel string
	wildcard bool
	cond     string
}

// allows reports whether the subject type k (its cond ignored) is in the
// relation's type restrictions, with or without a condition.
func (r *relationDef) allows(k refKey) bool {
	k.cond = ""
	_, ok := r.allowed[k]
	return ok
}

// accepts reports whether a tuple with a subject of type k and condition
// k.cond ("" for none) counts on this relation.
func (r *relationDef) accepts(k refKey) bool {
	_, ok := r.valid[k]
	return ok
}

// TypeRef is one subject type allowed by a direct assignment: "user",
// "user:*" (Wildcard) or "group#member" (Relation set), and "user with
// on_shift" when Condition is set: such tuples must carry that condition.
type TypeRef struct {
	Type      string
	Relation  string
	Wildcard  bool
	Condition string
}

func (t TypeRef) String() string {
	s := t.Type
	switch {
	case t.Wildcard:
		s += ":*"
	case t.Relation != "":
		s += "#" + t.Relation
	}
	if t.Condition != "" {
		s += " with " + t.Condition
	}
	return s
}

type opKind uint8

const (
	opThis         opKind = iota // direct tuples
	opComputed                   // another relation of the same object
	opTTU                        // relation from the objects named by a tupleset
	opUnion                      // or
	opIntersection               // and
	opDifference                 // but not: children[0] minus children[1]
)

// rewrite is one node of a relation's definition.
type rewrite struct {
	op       opKind
	relation string // opComputed, opTTU: the relation to evaluate
	tupleset string // opTTU: the relation whose tuples name the parents
	children []*rewrite
}

// String renders the node in DSL syntax; direct is the [ ... ] part.
func (rw *rewrite) String() string { return rw.format(nil, false) }

func (rw *rewrite) format(direct []TypeRef, nested bool) string {
	switch rw.op {
	case opThis:
		parts := make([]string, len(direct))
		for i, d := range direct {
			parts[i] = d.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case opComputed:
		return rw.relation
	case opTTU:
		return rw.relation + " from " + rw.tupleset
	}
	sep := map[opKind]string{opUnion: " or ", opIntersection: " and ", opDifference: " but not "}[rw.op]
	parts := make([]string, len(rw.children))
	for i, c := range rw.children {
		parts[i] = c.format(direct, true)
	}
	s := strings.Join(parts, sep)
	if nested {
		s = "(" + s + ")"
	}
	return s
}

// ModelError is one problem found while loading a model, with the 1-based
// line it is on (0 when no line applies). Error() reads "model.fga:12: msg".
type ModelError struct {
	File string
	Line int
	Msg  string
}

func (e *ModelError) Error() string {
	f := e.File
	if f == "" {
		f = "model.fga"
	}
	if e.Line <= 0 {
		return f + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", f, e.Line, e.Msg)
}

// maxErrors caps how many problems one load reports.
const maxErrors = 20

// LoadModel parses and validates a model written in the OpenFGA DSL. Errors
// name the line they are on, as "model.fga:LINE: message"; several
// problems are joined, one per line, and each is a *ModelError.
func LoadModel(dsl string) (*Model, error) { return loadModel("model.fga", dsl) }

// LoadModelFile reads and loads a model file; errors carry its path.
func LoadModelFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return loadModel(filepath.Base(path), string(b))
}

func loadModel(name, dsl string) (m *Model, err error) {
	// The parser is generated code; a bug in it must not take the server
	// down while it reloads a model, so a panic becomes a load error.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, &ModelError{File: name, Msg: fmt.Sprintf("parser failure: %v", r)}
		}
	}()
	proto, perr := transformer.TransformDSLToProto(dsl)
	if perr != nil {
		return nil, withFile(name, syntaxErrors(perr))
	}
	pos, serrs := scanPositions(dsl)
	if len(serrs) > 0 {
		return nil, withFile(name, serrs)
	}
	m, errs := build(proto, pos, dsl)
	if len(errs) > 0 {
		return nil, withFile(name, errs)
	}
	return m, nil
}

func syntaxErrors(err error) []*ModelError {
	var multi *transformer.OpenFgaDslSyntaxMultipleError
	if errors.As(err, &multi) && len(multi.Errors) > 0 {
		out := make([]*ModelError, 0, len(multi.Errors))
		for _, e := range multi.Errors {
			out = append(out, syntaxError(e.Error()))
		}
		return out
	}
	return []*ModelError{syntaxError(err.Error())}
}

func withFile(name string, errs []*ModelError) error {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	if len(errs) > maxErrors {
		errs = errs[:maxErrors]
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		e.File = name
		out[i] = e
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}

// convert turns a proto userset into our rewrite tree.
func convert(u *openfgav1.Userset) (*rewrite, error) {
	switch v := u.GetUserset().(type) {
	case *openfgav1.Userset_This:
		return &rewrite{op: opThis}, nil
	case *openfgav1.Userset_ComputedUserset:
		return &rewrite{op: opComputed, relation: v.ComputedUserset.GetRelation()}, nil
	case *openfgav1.Userset_TupleToUserset:
		return &rewrite{op: opTTU, relation: v.TupleToUserset.GetComputedUserset().GetRelation(),
			tupleset: v.TupleToUserset.GetTupleset().GetRelation()}, nil
	case *openfgav1.Userset_Union:
		return convertAll(opUnion, v.Union.GetChild())
	case *openfgav1.Userset_Intersection:
		return convertAll(opIntersection, v.Intersection.GetChild())
	case *openfgav1.Userset_Difference:
		return convertAll(opDifference, []*openfgav1.Userset{v.Difference.GetBase(), v.Difference.GetSubtract()})
	}
	return nil, errors.New("unsupported relation definition")
}

func convertAll(op opKind, in []*openfgav1.Userset) (*rewrite, error) {
	if len(in) < 2 {
		return nil, errors.New("operator with fewer than two operands")
	}
	rw := &rewrite{op: op}
	for _, c := range in {
		if c == nil {
			return nil, errors.New("operator with a missing operand")
		}
		cr, err := convert(c)
		if err != nil {
			return nil, err
		}
		// (a or b) or c is a or b or c: flattening keeps evaluation simple.
		if op == opUnion && cr.op == opUnion {
			rw.children = append(rw.children, cr.children...)
			continue
		}
		rw.children = append(rw.children, cr)
	}
	return rw, nil
}

// Source returns the DSL the model was loaded from.
func (m *Model) Source() string { return m.source }

// Types returns the type names in declaration order.
func (m *Model) Types() []string { return append([]string(nil), m.order...) }

// Relations returns the relations of typ in declaration order (nil if the
// type is unknown).
func (m *Model) Relations(typ string) []string {
	if td := m.types[typ]; td != nil {
		return append([]string(nil), td.order...)
	}
	return nil
}

// HasRelation reports whether typ is a type with relation rel.
func (m *Model) HasRelation(typ, rel string) bool { return m.relation(typ, rel) != nil }

// DirectTypes returns who may be written directly on typ#rel, for example
// [user group#member]; nil when the relation takes no direct tuples.
func (m *Model) DirectTypes(typ, rel string) []TypeRef {
	if rd := m.relation(typ, rel); rd != nil {
		return append([]TypeRef(nil), rd.direct...)
	}
	return nil
}

func (m *Model) relation(typ, rel string) *relationDef {
	if td := m.types[typ]; td != nil {
		return td.relations[rel]
	}
	return nil
}
