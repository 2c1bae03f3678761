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
	if m.relation(typ, relation) == nil {
		return nil, fmt.Errorf("%w question: type %q has no relation %q", ErrInvalid, typ, relation)
	}
	wantTyp, wantRel, _ := strings.Cut(subjectType, "#")
	if !validName(wantTyp, maxTypeLen) || (strings.Contains(subjectType, "#") && !validName(wantRel, maxRelationLen)) {
		return nil, fmt.Errorf("%w subject type %q: want type or type#relation", ErrInvalid, subjectType)
	}
	f := &forward{e: e, m: m, ctx: ctx, now: e.now(), wantTyp: wantTyp, wantRel: wantRel,
		state: map[nodeKey]uint8{}, found: map[string]uint8{}}
	if err := f.run(object, relation); err != nil {
		return nil, err
	}
	var out []string
	for subj, st := range f.found {
		if st == tentative {
			c, err := e.newCheckerWith(ctx, m, subj, f.now)
			if err != nil {
				return nil, err
			}
			o, err := c.relation(object, relation, 1)
			if err != nil {
				return nil, err
			}
			if !o.ok {
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
	ts, err := f.e.reader.TuplesByObject(f.ctx, obj, rel)
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
			if !rd.allows(refKey{typ: s.typ, rel: s.rel, wildcard: s.wildcard()}) {
				continue // a tuple the model does not allow here grants nothing
			}
			switch {
			case s.userset():
				f.add(s.obj, s.rel, tent, it.depth+1)
			case f.wantRel == "" && s.typ == f.wantTyp:
				f.addFound(t.Subject, tent)
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
			if !live(t, f.now) || p.userset() || p.wildcard() || !ts.allows(refKey{typ: p.typ}) {
				continue
			}
			if f.m.relation(p.typ, rw.relation) != nil {
				f.add(t.Subject, rw.relation, tent, it.depth+1)
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

// newCheckerWith prepares a Check of subj against model m at time now,
// for confirming candidates found by the list walks with the same model.
func (e *Engine) newCheckerWith(ctx context.Context, m *Model, subj string, now time.Time) (*checker, error) {
	s, err := parseSubject(subj)
	if err != nil {
		return nil, err
	}
	return &checker{e: e, m: m, ctx: ctx, subj: s, subjStr: subj, now: now,
		memo: map[nodeKey]outcome{}, onStack: map[nodeKey]int{}}, nil
}
