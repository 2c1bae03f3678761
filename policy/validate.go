package policy

import (
	"fmt"
	"sort"
	"strings"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
)

// build turns the transformer's proto model into a Model, checking
// everything the engine relies on; every problem names its line.
func build(proto *openfgav1.AuthorizationModel, pos *positions, src string) (*Model, []*ModelError) {
	var errs []*ModelError
	fail := func(ln int, format string, args ...any) {
		errs = append(errs, &ModelError{Line: ln, Msg: fmt.Sprintf(format, args...)})
	}
	if pos.module > 0 {
		fail(pos.module, "modular models are not supported")
	} else if v := proto.GetSchemaVersion(); v != "1.1" {
		fail(pos.schemaLine, "schema %q is not supported: use schema 1.1", v)
	}
	for _, ln := range pos.extend {
		fail(ln, "extend is not supported")
	}
	m := &Model{source: src, types: map[string]*typeDef{}, conds: map[string]*condition{}}
	buildConditions(m, proto, pos, fail, &errs)
	for _, ptd := range proto.GetTypeDefinitions() {
		name := ptd.GetType()
		lines := pos.types[name]
		if m.types[name] != nil {
			ln := 0
			if len(lines) > 1 {
				ln = lines[1]
			}
			fail(ln, "type %q is already defined at line %d", name, m.types[name].line)
			continue
		}
		td := &typeDef{name: name, relations: map[string]*relationDef{}}
		if len(lines) > 0 {
			td.line = lines[0]
		}
		m.types[name] = td
		m.order = append(m.order, name)
		for rel, u := range ptd.GetRelations() {
			rd := &relationDef{typ: name, name: rel, line: pos.relations[name][rel], allowed: map[refKey]struct{}{}}
			rw, err := convert(u)
			if err != nil {
				fail(rd.line, "%s#%s: %v", name, rel, err)
				continue
			}
			rd.rw = rw
			for _, ref := range ptd.GetMetadata().GetRelations()[rel].GetDirectlyRelatedUserTypes() {
				tr := TypeRef{Type: ref.GetType(), Relation: ref.GetRelation(), Wildcard: ref.GetWildcard() != nil,
					Condition: ref.GetCondition()}
				rd.direct = append(rd.direct, tr)
				rd.allowed[refKey{typ: tr.Type, rel: tr.Relation, wildcard: tr.Wildcard}] = struct{}{}
			}
			rd.buildValid()
			td.relations[rel] = rd
			td.order = append(td.order, rel)
		}
		sort.Slice(td.order, func(i, j int) bool {
			return td.relations[td.order[i]].line < td.relations[td.order[j]].line
		})
	}
	if len(m.order) == 0 {
		fail(0, "the model declares no types")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, tn := range m.order {
		td := m.types[tn]
		for _, rn := range td.order {
			rd := td.relations[rn]
			checkRewrite(m, rd, rd.rw, fail)
		}
	}
	if len(errs) == 0 {
		checkEntrypoints(m, fail)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	m.rev = buildReverseIndex(m)
	return m, nil
}

// buildConditions compiles the model's conditions into m.conds, and checks
// that every "with NAME" names one. Type errors in an expression are
// refused here, at load, with their line.
func buildConditions(m *Model, proto *openfgav1.AuthorizationModel, pos *positions, fail func(int, string, ...any), errs *[]*ModelError) {
	decl := map[string]conditionPos{}
	for _, c := range pos.conditions {
		if c.decl {
			if _, dup := decl[c.name]; !dup {
				decl[c.name] = c
			}
		}
	}
	names := make([]string, 0, len(proto.GetConditions()))
	for n := range proto.GetConditions() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pc := proto.GetConditions()[n]
		d := decl[n]
		if pc.GetName() != n {
			fail(d.line, "condition %q is declared as %q", n, pc.GetName())
			continue
		}
		cd, cerrs := compileCondition(pc, d.line, d.exprLine)
		if len(cerrs) > 0 {
			*errs = append(*errs, cerrs...)
			continue
		}
		m.conds[n] = cd
	}
	for _, c := range pos.conditions {
		switch {
		case c.decl:
		case strings.HasPrefix(c.name, "$"):
			// An inline expression in a type restriction is a newer DSL
			// form the OpenFGA server (v1.22) does not take.
			fail(c.line, "%s#%s: inline condition expressions (%s) are not supported: declare a condition and name it", c.typ, c.rel, c.name)
		case c.name == "":
			fail(c.line, "%s#%s: \"with\" needs a condition name", c.typ, c.rel)
		case proto.GetConditions()[c.name] == nil:
			fail(c.line, "%s#%s uses condition %q, which the model does not define", c.typ, c.rel, c.name)
		}
	}
}

// checkRewrite verifies that everything a relation refers to exists.
func checkRewrite(m *Model, rd *relationDef, rw *rewrite, fail func(int, string, ...any)) {
	where := rd.typ + "#" + rd.name
	switch rw.op {
	case opThis:
		if len(rd.direct) == 0 {
			fail(rd.line, "%s: a direct assignment needs at least one type", where)
		}
		for _, d := range rd.direct {
			switch {
			case m.types[d.Type] == nil:
				fail(rd.line, "%s: type %q is not defined", where, d.Type)
			case d.Relation != "" && m.relation(d.Type, d.Relation) == nil:
				fail(rd.line, "%s: type %q has no relation %q", where, d.Type, d.Relation)
			}
		}
	case opComputed:
		if m.relation(rd.typ, rw.relation) == nil {
			fail(rd.line, "%s: relation %q is not defined on type %q", where, rw.relation, rd.typ)
		}
	case opTTU:
		ts := m.relation(rd.typ, rw.tupleset)
		if ts == nil {
			fail(rd.line, "%s: relation %q (after from) is not defined on type %q", where, rw.tupleset, rd.typ)
			return
		}
		// The engine reads tupleset tuples as plain parent links, so the
		// tupleset must be a purely direct relation to plain types, as
		// OpenFGA also requires.
		if ts.rw.op != opThis {
			fail(rd.line, "%s: %q after from must be a direct relation like [type]", where, rw.tupleset)
			return
		}
		found := false
		for _, d := range ts.direct {
			if d.Wildcard || d.Relation != "" {
				fail(rd.line, "%s: %s#%s, used after from, may only list plain types, not %s", where, rd.typ, rw.tupleset, d)
				return
			}
			if m.relation(d.Type, rw.relation) != nil {
				found = true
			}
		}
		if !found {
			fail(rd.line, "%s: no type in %s#%s has relation %q", where, rd.typ, rw.tupleset, rw.relation)
		}
	default:
		for _, c := range rw.children {
			checkRewrite(m, rd, c, fail)
		}
	}
}

// checkEntrypoints rejects relations that can never hold for anyone: every
// way to satisfy them leads back to themselves (define a: b, define b: a)
// without reaching a direct assignment. It is a least fixed point.
func checkEntrypoints(m *Model, fail func(int, string, ...any)) {
	ok := map[relKey]bool{}
	var eval func(rd *relationDef, rw *rewrite) bool
	eval = func(rd *relationDef, rw *rewrite) bool {
		switch rw.op {
		case opThis:
			for _, d := range rd.direct {
				if d.Relation == "" || ok[relKey{d.Type, d.Relation}] {
					return true
				}
			}
			return false
		case opComputed:
			return ok[relKey{rd.typ, rw.relation}]
		case opTTU:
			for _, d := range m.types[rd.typ].relations[rw.tupleset].direct {
				if ok[relKey{d.Type, rw.relation}] {
					return true
				}
			}
			return false
		case opUnion:
			for _, c := range rw.children {
				if eval(rd, c) {
					return true
				}
			}
			return false
		case opIntersection:
			for _, c := range rw.children {
				if !eval(rd, c) {
					return false
				}
			}
			return true
		default: // opDifference: only the base can let anyone in
			return eval(rd, rw.children[0])
		}
	}
	for changed := true; changed; {
		changed = false
		for _, td := range m.types {
			for _, rd := range td.relations {
				k := relKey{rd.typ, rd.name}
				if !ok[k] && eval(rd, rd.rw) {
					ok[k], changed = true, true
				}
			}
		}
	}
	for _, tn := range m.order {
		td := m.types[tn]
		for _, rn := range td.order {
			if !ok[relKey{tn, rn}] {
				fail(td.relations[rn].line, "%s#%s can never hold: every definition path loops back without reaching a directly assignable type", tn, rn)
			}
		}
	}
}

// relKey names a relation of a type.
type relKey struct{ typ, rel string }

// edge says: membership in what the edge hangs under may give membership in
// typ#rel. Tentative edges pass through "and" or the base of "but not", so
// what they yield must be confirmed with Check.
type edge struct {
	typ, rel  string
	tentative bool
}

// ttuEdge: membership in P#r, where tuple X#tupleset@P exists, gives
// membership in X#rel (X of type typ).
type ttuEdge struct {
	typ, rel, tupleset string
	tentative          bool
}

// reverseIndex is the model read backwards, for ListObjects: from what a
// subject already is, to what that can make it.
type reverseIndex struct {
	direct   map[string][]edge    // subject type -> relations taking it directly
	wildcard map[string][]edge    // subject type -> relations taking type:*
	userset  map[relKey][]edge    // type#rel -> relations taking that userset
	computed map[relKey][]edge    // type#rel -> relations of the same type built on it
	ttu      map[relKey][]ttuEdge // type#rel -> "rel from tupleset" users of it
}

func buildReverseIndex(m *Model) reverseIndex {
	ri := reverseIndex{direct: map[string][]edge{}, wildcard: map[string][]edge{},
		userset: map[relKey][]edge{}, computed: map[relKey][]edge{}, ttu: map[relKey][]ttuEdge{}}
	var walk func(rd *relationDef, rw *rewrite, tent bool)
	walk = func(rd *relationDef, rw *rewrite, tent bool) {
		e := edge{typ: rd.typ, rel: rd.name, tentative: tent}
		switch rw.op {
		case opThis:
			for _, d := range rd.direct {
				switch {
				case d.Wildcard:
					ri.wildcard[d.Type] = addEdge(ri.wildcard[d.Type], e)
				case d.Relation != "":
					k := relKey{d.Type, d.Relation}
					ri.userset[k] = addEdge(ri.userset[k], e)
				default:
					ri.direct[d.Type] = addEdge(ri.direct[d.Type], e)
				}
			}
		case opComputed:
			k := relKey{rd.typ, rw.relation}
			ri.computed[k] = addEdge(ri.computed[k], e)
		case opTTU:
			for _, d := range m.types[rd.typ].relations[rw.tupleset].direct {
				if m.relation(d.Type, rw.relation) == nil {
					continue
				}
				k := relKey{d.Type, rw.relation}
				ri.ttu[k] = addTTUEdge(ri.ttu[k], ttuEdge{typ: rd.typ, rel: rd.name, tupleset: rw.tupleset, tentative: tent})
			}
		case opUnion:
			for _, c := range rw.children {
				walk(rd, c, tent)
			}
		case opIntersection:
			for _, c := range rw.children {
				walk(rd, c, true)
			}
		case opDifference:
			walk(rd, rw.children[0], true) // the subtracted part never grants
		}
	}
	for _, td := range m.types {
		for _, rd := range td.relations {
			walk(rd, rd.rw, false)
		}
	}
	return ri
}

// addEdge adds e, merging duplicates (a definite path beats a tentative
// one) and keeping edges sorted by type so that lookups group by type.
func addEdge(es []edge, e edge) []edge {
	for i := range es {
		if es[i].typ == e.typ && es[i].rel == e.rel {
			es[i].tentative = es[i].tentative && e.tentative
			return es
		}
	}
	es = append(es, e)
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].typ != es[j].typ {
			return es[i].typ < es[j].typ
		}
		return es[i].rel < es[j].rel
	})
	return es
}

func addTTUEdge(es []ttuEdge, e ttuEdge) []ttuEdge {
	for i := range es {
		if es[i].typ == e.typ && es[i].rel == e.rel && es[i].tupleset == e.tupleset {
			es[i].tentative = es[i].tentative && e.tentative
			return es
		}
	}
	es = append(es, e)
	sort.SliceStable(es, func(i, j int) bool { return es[i].typ < es[j].typ })
	return es
}
