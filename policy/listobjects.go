package policy

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/sshbastion/bastion/store"
)

// Membership states found by the graph walks of ListObjects and ListUsers.
const (
	unseen    uint8 = iota
	tentative       // reached through "and" or the base of "but not": confirm with Check
	definite        // reached through direct tuples, computed relations, parents and "or" only
)

// walkItem is one membership to expand: the subject is in obj#rel.
type walkItem struct {
	obj, rel  string
	tentative bool
	depth     int
}

// ListObjects returns, sorted, the objects of objectType on which subject
// has relation. It does not test every object of the type: it walks the
// model backwards from the subject (the groups it is in, what those are
// members of, the children of the projects it reaches, and so on) using
// TuplesBySubject, and confirms with Check only the objects reached through
// "and" or "but not".
func (e *Engine) ListObjects(ctx context.Context, subj, relation, objectType string) ([]string, error) {
	m := e.model.Load()
	if err := m.checkTarget(objectType, relation); err != nil {
		return nil, err
	}
	s, err := parseSubject(subj)
	if err != nil {
		return nil, err
	}
	if err := m.checkSubject(s, "question"); err != nil {
		return nil, err
	}
	q, err := e.newQuery(ctx, m)
	if err != nil {
		return nil, err
	}
	r := &reverser{e: e, m: m, q: q, ctx: ctx, now: e.now(), state: map[nodeKey]uint8{},
		cache: map[lookupKey][]store.Tuple{}, leads: m.leadsTo(relKey{objectType, relation})}
	if err := r.run(s, subj); err != nil {
		return nil, err
	}
	if r.condErr != nil {
		return nil, r.condErr
	}
	var out []string
	for k, st := range r.state {
		if k.rel != relation || typeOf(k.obj) != objectType {
			continue
		}
		if st == tentative {
			ok, err := q.confirm(ctx, e, subj, k.obj, relation, r.now)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		out = append(out, k.obj)
	}
	sort.Strings(out)
	return out, nil
}

type lookupKey struct{ subject, objectType string }

// reverser walks from a subject to everything it is a member of.
type reverser struct {
	e   *Engine
	m   *Model
	q   *query
	ctx context.Context
	now time.Time
	// state is the visited set and the cycle guard: a membership is
	// expanded at most twice (tentative, then definite), so groups that
	// contain each other cannot make the walk loop.
	state map[nodeKey]uint8
	queue []walkItem
	cache map[lookupKey][]store.Tuple
	// leads holds the relations from which the walk can reach the
	// target; condErr is the first condition on a tuple leading into one
	// of them that could not be evaluated.
	leads   map[relKey]bool
	condErr error
}

func (r *reverser) run(s subject, subj string) error {
	var err error
	switch {
	case s.userset():
		err = r.add(s.obj, s.rel, false, 1)
	case s.wildcard():
		err = r.fromSubject(subj, r.m.rev.wildcard[s.typ])
	default:
		if err = r.fromSubject(subj, r.m.rev.direct[s.typ]); err == nil {
			err = r.fromSubject(s.typ+":*", r.m.rev.wildcard[s.typ])
		}
	}
	// Breadth first, so each membership is first met at its shortest
	// distance from the subject, the distance Check's depth limit counts.
	for i := 0; err == nil && i < len(r.queue); i++ {
		if i%256 == 0 {
			if err = r.ctx.Err(); err != nil {
				break
			}
		}
		err = r.expand(r.queue[i])
	}
	return err
}

// add records that the subject is in obj#rel, and queues it for expansion
// if that is news (or upgrades a tentative membership to a definite one).
func (r *reverser) add(obj, rel string, tent bool, depth int) error {
	k := nodeKey{obj, rel}
	st := r.state[k]
	if st == definite || (st == tentative && tent) {
		return nil
	}
	// Depth limit, the same one Check applies: a membership this far from
	// the subject is one Check could not confirm either.
	if depth > r.e.maxDepth {
		return depthError(r.e.maxDepth, obj, rel)
	}
	if tent {
		r.state[k] = tentative
	} else {
		r.state[k] = definite
	}
	r.queue = append(r.queue, walkItem{obj: obj, rel: rel, tentative: tent, depth: depth})
	return nil
}

// bySubject reads TuplesBySubject once per walk.
func (r *reverser) bySubject(subj, objectType string) ([]store.Tuple, error) {
	k := lookupKey{subj, objectType}
	if ts, ok := r.cache[k]; ok {
		return ts, nil
	}
	ts, err := r.q.reader.TuplesBySubject(r.ctx, subj, objectType)
	if err != nil {
		return nil, fmt.Errorf("policy: reading tuples of %s: %w", subj, err)
	}
	r.cache[k] = ts
	return ts, nil
}

// fromSubject follows the tuples naming subj (a subject, its wildcard, or
// a userset) to the relations in edges that accept it directly.
func (r *reverser) fromSubject(subj string, edges []edge) error {
	return r.viaTuples(subj, edges, false, 1)
}

func (r *reverser) viaTuples(subj string, edges []edge, tent bool, depth int) error {
	for i := 0; i < len(edges); {
		j := i
		for j < len(edges) && edges[j].typ == edges[i].typ {
			j++
		}
		group := edges[i:j]
		tuples, err := r.bySubject(subj, edges[i].typ)
		if err != nil {
			return err
		}
		for ti := range tuples {
			t := &tuples[ti]
			if !live(t, r.now) {
				continue
			}
			for _, e := range group {
				if e.rel != t.Relation || !r.counts(t) {
					continue
				}
				follow, tt := r.follow(t, e.rel, tent || e.tentative)
				if !follow {
					continue
				}
				if err := r.add(t.Object, e.rel, tt, depth); err != nil {
					return err
				}
			}
		}
		i = j
	}
	return nil
}

// expand derives what membership in it.obj#it.rel leads to.
func (r *reverser) expand(it walkItem) error {
	k := relKey{typeOf(it.obj), it.rel}
	for _, e := range r.m.rev.computed[k] {
		if err := r.add(it.obj, e.rel, it.tentative || e.tentative, it.depth+1); err != nil {
			return err
		}
	}
	if edges := r.m.rev.userset[k]; len(edges) > 0 {
		if err := r.viaTuples(it.obj+"#"+it.rel, edges, it.tentative, it.depth+1); err != nil {
			return err
		}
	}
	ttus := r.m.rev.ttu[k]
	for i := 0; i < len(ttus); {
		j := i
		for j < len(ttus) && ttus[j].typ == ttus[i].typ {
			j++
		}
		tuples, err := r.bySubject(it.obj, ttus[i].typ)
		if err != nil {
			return err
		}
		for ti := range tuples {
			t := &tuples[ti]
			if !live(t, r.now) {
				continue
			}
			for _, e := range ttus[i:j] {
				if e.tupleset != t.Relation || !r.counts(t) {
					continue
				}
				follow, tt := r.follow(t, e.rel, it.tentative || e.tentative)
				if !follow {
					continue
				}
				if err := r.add(t.Object, e.rel, tt, it.depth+1); err != nil {
					return err
				}
			}
		}
		i = j
	}
	return nil
}

// counts reports whether the model accepts t (its subject type and
// condition) on its object's relation: tuples it does not grant nothing.
func (r *reverser) counts(t *store.Tuple) bool {
	rd := r.m.relation(typeOf(t.Object), t.Relation)
	if rd == nil {
		return false
	}
	s := parseSubjectFast(t.Subject)
	return rd.accepts(refKey{typ: s.typ, rel: s.rel, wildcard: s.wildcard(), cond: t.Condition})
}

// follow is walkCondition for the reverse walk, which also keeps the
// first condition that cannot be evaluated on a tuple granting rel, a
// relation that leads to the target. OpenFGA's ListObjects fails with
// such an error (below its result limit) even when the objects are also
// reached another way; answering with a partial list instead would hide
// a grant whose condition is broken, so the bastion fails the same way.
func (r *reverser) follow(t *store.Tuple, rel string, tent bool) (follow, tentative bool) {
	if t.Condition == "" {
		return true, tent
	}
	ev, err := r.q.condition(t)
	if err != nil {
		if r.condErr == nil && r.leads[relKey{typeOf(t.Object), rel}] {
			r.condErr = err
		}
		return true, true
	}
	return ev.met, tent
}

// leadsTo returns the relations from which the reverse walk can reach
// target (target among them): those with an edge into one of them.
func (m *Model) leadsTo(target relKey) map[relKey]bool {
	leads := map[relKey]bool{target: true}
	for changed := true; changed; {
		changed = false
		mark := func(from relKey, typ, rel string) {
			if !leads[from] && leads[relKey{typ, rel}] {
				leads[from], changed = true, true
			}
		}
		for from, es := range m.rev.computed {
			for _, e := range es {
				mark(from, e.typ, e.rel)
			}
		}
		for from, es := range m.rev.userset {
			for _, e := range es {
				mark(from, e.typ, e.rel)
			}
		}
		for from, es := range m.rev.ttu {
			for _, e := range es {
				mark(from, e.typ, e.rel)
			}
		}
	}
	return leads
}
