package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sshbastion/bastion/store"
)

// ListUsers returns, sorted, the subjects of subjectType that have relation
// on object: who can reach it. subjectType is a type ("user") or a userset
// type ("group#member"). For a plain type, "type:*" in the result means
// every subject of the type. It walks the model forwards from the object
// and confirms with Check only subjects reached through "and" or "but not".
func (e *Engine) ListUsers(ctx context.Context, object, relation, subjectType string) ([]string, error) {
	m := e.model.Load()
	typ, _, err := ParseObject(object)
	if err != nil {
		return nil, err
	}
	if err := m.checkTarget(typ, relation); err != nil {
		return nil, err
	}
	wantTyp, wantRel, _ := strings.Cut(subjectType, "#")
	if !validName(wantTyp, maxTypeLen) || (strings.Contains(subjectType, "#") && !validName(wantRel, maxRelationLen)) {
		return nil, fmt.Errorf("%w subject type %q: want type or type#relation", ErrInvalid, subjectType)
	}
	// A filter naming a type or relation the model lacks is an error, as
	// in OpenFGA, not an empty answer.
	if m.types[wantTyp] == nil {
		return nil, fmt.Errorf("%w subject type %q: type %q is not in the model", ErrInvalid, subjectType, wantTyp)
	}
	if wantRel != "" && m.relation(wantTyp, wantRel) == nil {
		return nil, fmt.Errorf("%w subject type %q: type %q has no relation %q", ErrInvalid, subjectType, wantTyp, wantRel)
	}
	q, err := e.newQuery(ctx, m)
	if err != nil {
		return nil, err
	}
	f := &forward{e: e, m: m, q: q, ctx: ctx, now: e.now(), wantTyp: wantTyp, wantRel: wantRel,
		state: map[nodeKey]uint8{}, found: map[string]uint8{}}
	if err := f.run(object, relation); err != nil {
		return nil, err
	}
	var out []string
	for subj, st := range f.found {
		if st == tentative {
			ok, err := q.confirm(ctx, e, subj, object, relation, f.now)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		out = append(out, subj)
	}
	sort.Strings(out)
	return out, nil
}

// forward walks from an object#relation to every subject inside it.
type forward struct {
	e                *Engine
	m                *Model
	q                *query
	ctx              context.Context
	now              time.Time
	wantTyp, wantRel string
	// state is the visited set and the cycle guard: a node is expanded at
	// most twice (tentative, then definite), so cycles cannot loop.
	state map[nodeKey]uint8
	queue []walkItem
	found map[string]uint8
}

func (f *forward) run(object, relation string) error {
	f.add(object, relation, false, 1)
	// Breadth first. The visited set (state) stops cycles; the depth limit
	// stops chains longer than Check would follow, which would otherwise
	// cost unbounded reads.
	for i := 0; i < len(f.queue); i++ {
		if i%256 == 0 {
			if err := f.ctx.Err(); err != nil {
				return err
			}
		}
		it := f.queue[i]
		if it.depth > f.e.maxDepth {
			return depthError(f.e.maxDepth, it.obj, it.rel)
		}
		if f.wantRel != "" && it.rel == f.wantRel && typeOf(it.obj) == f.wantTyp {
			f.addFound(it.obj+"#"+it.rel, it.tentative)
		}
		rd := f.m.relation(typeOf(it.obj), it.rel)
		if rd == nil {
			continue
		}
		if err := f.walk(it, rd, rd.rw, it.tentative); err != nil {
			return err
		}
	}
	return nil
}

func (f *forward) add(obj, rel string, tent bool, depth int) {
	k := nodeKey{obj, rel}
	st := f.state[k]
	if st == definite || (st == tentative && tent) {
		return
	}
	f.state[k] = definite
	if tent {
		f.state[k] = tentative
	}
	f.queue = append(f.queue, walkItem{obj: obj, rel: rel, tentative: tent, depth: depth})
}

func (f *forward) addFound(subj string, tent bool) {
	if st := f.found[subj]; st == definite || (st == tentative && tent) {
		return
	}
	f.found[subj] = definite
	if tent {
		f.found[subj] = tentative
	}
}

func (f *forward) read(obj, rel string) ([]store.Tuple, error) {
	ts, err := f.q.reader.TuplesByObject(f.ctx, obj, rel)
	if err != nil {
		return nil, fmt.Errorf("policy: reading %s#%s: %w", obj, rel, err)
	}
	return ts, nil
}

func (f *forward) walk(it walkItem, rd *relationDef, rw *rewrite, tent bool) error {
	switch rw.op {
	case opThis:
		tuples, err := f.read(it.obj, rd.name)
		if err != nil {
			return err
		}
		for i := range tuples {
			t := &tuples[i]
			if !live(t, f.now) {
				continue
			}
			s := parseSubjectFast(t.Subject)
			if !rd.accepts(refKey{typ: s.typ, rel: s.rel, wildcard: s.wildcard(), cond: t.Condition}) {
				continue // a tuple the model does not allow here grants nothing
			}
			follow, tt := f.q.walkCondition(t, tent)
			if !follow {
				continue
			}
			switch {
			case s.userset():
				f.add(s.obj, s.rel, tt, it.depth+1)
			case f.wantRel == "" && s.typ == f.wantTyp:
				f.addFound(t.Subject, tt)
			}
		}
	case opComputed:
		f.add(it.obj, rw.relation, tent, it.depth+1)
	case opTTU:
		ts := f.m.relation(rd.typ, rw.tupleset)
		tuples, err := f.read(it.obj, rw.tupleset)
		if err != nil {
			return err
		}
		for i := range tuples {
			t := &tuples[i]
			p := parseSubjectFast(t.Subject)
			if !live(t, f.now) || p.userset() || p.wildcard() || !ts.accepts(refKey{typ: p.typ, cond: t.Condition}) {
				continue
			}
			follow, tt := f.q.walkCondition(t, tent)
			if follow && f.m.relation(p.typ, rw.relation) != nil {
				f.add(t.Subject, rw.relation, tt, it.depth+1)
			}
		}
	case opUnion:
		for _, c := range rw.children {
			if err := f.walk(it, rd, c, tent); err != nil {
				return err
			}
		}
	case opIntersection:
		for _, c := range rw.children {
			if err := f.walk(it, rd, c, true); err != nil {
				return err
			}
		}
	case opDifference:
		return f.walk(it, rd, rw.children[0], true) // the subtracted part never grants
	}
	return nil
}

// checker prepares a Check of subject s (subj as written) against the
// query's model, reader and request context at time now; the list walks
// use it to confirm their candidates with the same model.
func (q *query) checker(ctx context.Context, e *Engine, s subject, subj string, now time.Time) *checker {
	return &checker{e: e, m: q.m, q: q, ctx: ctx, subj: s, subjStr: subj, now: now,
		memo: map[nodeKey]outcome{}, onStack: map[nodeKey]int{}}
}

// confirm runs Check for a candidate of a list walk.
func (q *query) confirm(ctx context.Context, e *Engine, subj, object, relation string, now time.Time) (bool, error) {
	s, err := parseSubject(subj)
	if err != nil {
		return false, err
	}
	o, err := q.checker(ctx, e, s, subj, now).relation(object, relation, 1)
	return o.ok, err
}

// condition evaluates t's condition over the query's request context.
func (q *query) condition(t *store.Tuple) (condEval, error) {
	cd := q.m.conds[t.Condition]
	if cd == nil {
		// Callers check that the model accepts the tuple's condition
		// first; one it lacks never holds.
		return condEval{}, nil
	}
	return cd.evaluate(t, q.req)
}

// walkCondition is how a list walk treats a tuple's condition: follow it
// (definite or tentative as the walk was) when met, drop it when not, and
// when it cannot be evaluated follow it tentatively, so that Check, which
// confirms tentative candidates, decides or reports the error.
func (q *query) walkCondition(t *store.Tuple, tent bool) (follow, tentative bool) {
	if t.Condition == "" {
		return true, tent
	}
	ev, err := q.condition(t)
	if err != nil {
		return true, true
	}
	return ev.met, tent
}
