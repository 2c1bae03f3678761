package policy

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// checker evaluates one question: does subj reach some object#relation.
type checker struct {
	e       *Engine
	m       *Model
	q       *query
	ctx     context.Context
	subj    subject
	subjStr string
	now     time.Time
	// memo holds finished answers for this question's subject, so a group
	// reached along several paths is evaluated once.
	memo map[nodeKey]outcome
	// onStack maps the object#relation pairs being evaluated to their
	// position on the evaluation stack: the cycle guard.
	onStack map[nodeKey]int
	explain bool
	tried   []string
	conds   []ConditionCheck // explain only: every condition evaluated
}

type nodeKey struct{ obj, rel string }

// outcome is the result of evaluating one node.
type outcome struct {
	ok bool
	// cycle says the answer "no" was reached through a cycle (the node
	// met again while being evaluated), as OpenFGA's CycleDetected: such
	// a "no" also fails the subtracted side of "but not", so that a grant
	// defined through its own exclusion never holds.
	cycle bool
	// cut is the lowest stack position where the cycle guard stopped a
	// loop that this answer depends on (noCut if none). An answer computed
	// while a loop was cut at an enclosing node is provisional: it must not
	// be memoised, because that node's own answer is not known yet.
	cut  int
	path []Step // explain only: how ok was reached
}

const noCut = math.MaxInt

// logf records what was tried, for Explain. Callers test c.explain first
// so that Check does not pay for formatting.
func (c *checker) logf(depth int, format string, args ...any) {
	c.tried = append(c.tried, strings.Repeat("  ", depth-1)+fmt.Sprintf(format, args...))
}

// relation evaluates whether the subject is in obj#rel; depth counts the
// relation hops taken from the question.
func (c *checker) relation(obj, rel string, depth int) (outcome, error) {
	// Depth limit: deep chains (long group nestings, long parent chains)
	// cost reads and stack; past the limit the answer is "unknown", which
	// is an error, never a silent false or true.
	if depth > c.e.maxDepth {
		if c.explain {
			c.logf(depth, "%s#%s: depth limit %d reached", obj, rel, c.e.maxDepth)
		}
		return outcome{cut: noCut}, depthError(c.e.maxDepth, obj, rel)
	}
	if err := c.ctx.Err(); err != nil {
		return outcome{cut: noCut}, err
	}
	k := nodeKey{obj, rel}
	if o, ok := c.memo[k]; ok {
		if c.explain {
			c.logf(depth, "%s#%s: already evaluated (%s)", obj, rel, yesNo(o.ok))
		}
		return o, nil
	}
	// Cycle guard: group A in group B in group A (or a relation defined
	// through itself) would otherwise recurse forever. A node met again
	// while it is still being evaluated contributes nothing new: every way
	// through it is also explored from its first visit.
	if pos, ok := c.onStack[k]; ok {
		if c.explain {
			c.logf(depth, "%s#%s: cycle, not followed again", obj, rel)
		}
		return outcome{cut: pos, cycle: true}, nil
	}
	if c.subj.userset() && c.subj.obj == obj && c.subj.rel == rel {
		if c.explain {
			c.logf(depth, "%s#%s: is the subject itself", obj, rel)
		}
		return outcome{ok: true, cut: noCut, path: c.steps(Step{Kind: StepSelf, Node: obj + "#" + rel})}, nil
	}
	rd := c.m.relation(typeOf(obj), rel)
	if rd == nil {
		return outcome{cut: noCut}, nil
	}
	if c.explain {
		c.logf(depth, "%s#%s = %s", obj, rel, rd.rw.format(rd.direct, false))
	}
	pos := len(c.onStack)
	c.onStack[k] = pos
	o, err := c.rewrite(obj, rd, rd.rw, depth)
	delete(c.onStack, k)
	if o.cut >= pos {
		o.cut = noCut // loops cut at this node or below are resolved here
		if err == nil {
			c.memo[k] = o
		}
	}
	return o, err
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// steps builds a path only when explaining, so Check allocates nothing.
func (c *checker) steps(s ...Step) []Step {
	if !c.explain {
		return nil
	}
	return s
}

func (c *checker) prepend(s Step, rest []Step) []Step {
	if !c.explain {
		return nil
	}
	return append([]Step{s}, rest...)
}

func (c *checker) rewrite(obj string, rd *relationDef, rw *rewrite, depth int) (outcome, error) {
	switch rw.op {
	case opThis:
		return c.direct(obj, rd, depth)
	case opComputed:
		o, err := c.relation(obj, rw.relation, depth+1)
		if o.ok {
			o.path = c.prepend(Step{Kind: StepComputed, Node: obj + "#" + rw.relation}, o.path)
		}
		return o, err
	case opTTU:
		return c.ttu(obj, rd, rw, depth)
	case opUnion:
		res := outcome{cut: noCut}
		var firstErr error
		for _, ch := range rw.children {
			o, err := c.rewrite(obj, rd, ch, depth)
			if o.ok {
				return o, nil // one granting branch decides, whatever failed elsewhere
			}
			res.cut = min(res.cut, o.cut)
			res.cycle = res.cycle || (err == nil && o.cycle)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
		return res, firstErr
	case opIntersection:
		res := outcome{ok: true, cut: noCut}
		var firstErr error
		var paths [][]Step
		for _, ch := range rw.children {
			o, err := c.rewrite(obj, rd, ch, depth)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if !o.ok {
				return o, nil // one failing branch decides, whatever failed elsewhere
			}
			res.cut = min(res.cut, o.cut)
			paths = append(paths, o.path)
		}
		if firstErr != nil {
			return outcome{cut: res.cut}, firstErr
		}
		if c.explain {
			res.path = []Step{{Kind: StepAnd, Node: obj + "#" + rd.name}}
			for _, p := range paths {
				res.path = append(res.path, indent(p)...)
			}
		}
		return res, nil
	default: // opDifference
		// As OpenFGA: a "no" of the base decides; otherwise a "yes" of
		// the subtracted side, or a "no" reached through a cycle, denies
		// even when the base failed; only then does an error stand.
		base, baseErr := c.rewrite(obj, rd, rw.children[0], depth)
		if baseErr == nil && !base.ok {
			return base, nil
		}
		if c.explain {
			c.logf(depth, "  but not %s:", rw.children[1].format(nil, true))
		}
		sub, err := c.rewrite(obj, rd, rw.children[1], depth)
		if err == nil && (sub.ok || sub.cycle) {
			if c.explain && sub.cycle && !sub.ok {
				c.logf(depth, "  %s was reached through a cycle: the exclusion denies", rw.children[1].format(nil, true))
			}
			return outcome{cut: sub.cut, cycle: sub.cycle}, nil
		}
		cut := min(base.cut, sub.cut)
		if baseErr != nil {
			return outcome{cut: cut}, baseErr
		}
		if err != nil {
			return outcome{cut: cut}, err
		}
		base.cut = cut
		base.path = append(base.path, c.steps(Step{Kind: StepButNot, Node: obj + "#" + rd.name,
			Note: rw.children[1].format(nil, true)})...)
		return base, nil
	}
}

// direct looks at the tuples written on obj#rel: the subject itself, a
// wildcard of its type, or usersets that may contain it. A tuple counts
// only if the model accepts its subject type and condition here, and its
// condition holds.
func (c *checker) direct(obj string, rd *relationDef, depth int) (outcome, error) {
	tuples, err := c.q.reader.TuplesByObject(c.ctx, obj, rd.name)
	if err != nil {
		return outcome{cut: noCut}, fmt.Errorf("policy: reading %s#%s: %w", obj, rd.name, err)
	}
	s := c.subj
	exact := refKey{typ: s.typ, rel: s.rel, wildcard: s.wildcard()}
	wild := refKey{typ: s.typ, wildcard: true}
	wildOK := !s.userset() && !s.wildcard() && rd.allows(wild)
	exactSeen := false
	usersets := 0
	var firstErr error
	for i := range tuples {
		t := &tuples[i]
		if !live(t, c.now) {
			continue
		}
		switch {
		case t.Subject == c.subjStr:
			// One tuple per key is read, the contextual one first (as
			// OpenFGA reads the exact tuple).
			if exactSeen {
				continue
			}
			exactSeen = true
			if exact.cond = t.Condition; !rd.accepts(exact) {
				continue
			}
			met, err := c.condition(t, depth)
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			if met {
				if c.explain {
					c.logf(depth, "  tuple %s matches", t)
				}
				return outcome{ok: true, cut: noCut, path: c.steps(c.tupleStep(StepTuple, t))}, nil
			}
		case wildOK && isWildcardOf(t.Subject, s.typ):
			if wild.cond = t.Condition; !rd.accepts(wild) {
				continue
			}
			met, err := c.condition(t, depth)
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			if met {
				if c.explain {
					c.logf(depth, "  tuple %s matches (wildcard)", t)
				}
				return outcome{ok: true, cut: noCut, path: c.steps(c.tupleStep(StepWildcard, t))}, nil
			}
		}
		if strings.IndexByte(t.Subject, '#') >= 0 {
			usersets++
		}
	}
	if c.explain {
		c.logf(depth, "  direct: %d tuple(s), none grants %s; %d userset(s) to follow", len(tuples), c.subjStr, usersets)
	}
	res := outcome{cut: noCut}
	var condErr, walkErr error
	passed := false
	for i := range tuples {
		t := &tuples[i]
		if usersets == 0 {
			break
		}
		if !live(t, c.now) || strings.IndexByte(t.Subject, '#') < 0 {
			continue
		}
		us := parseSubjectFast(t.Subject)
		// A tuple the model does not allow here (written before a model
		// change, or behind the model's back) grants nothing.
		if !rd.accepts(refKey{typ: us.typ, rel: us.rel, cond: t.Condition}) {
			continue
		}
		met, err := c.condition(t, depth)
		if err != nil {
			condErr = cmp.Or(condErr, err)
			continue
		}
		if !met {
			continue
		}
		passed = true
		o, err := c.relation(us.obj, us.rel, depth+1)
		if o.ok {
			o.path = c.prepend(c.tupleStep(StepTuple, t), o.path)
			return o, nil
		}
		res.cut = min(res.cut, o.cut)
		res.cycle = res.cycle || (err == nil && o.cycle)
		walkErr = cmp.Or(walkErr, err)
	}
	// As OpenFGA's condition filter: a condition that could not be
	// evaluated is an error only if no userset tuple passed its own.
	if passed {
		condErr = nil
	}
	return res, cmp.Or(firstErr, walkErr, condErr)
}

// isWildcardOf reports whether s is "typ:*", without allocating.
func isWildcardOf(s, typ string) bool {
	return len(s) == len(typ)+2 && s[len(typ)] == ':' && s[len(typ)+1] == '*' && s[:len(typ)] == typ
}

// ttu follows "rel from tupleset": the parents named by obj#tupleset
// tuples, and rel on each of them.
func (c *checker) ttu(obj string, rd *relationDef, rw *rewrite, depth int) (outcome, error) {
	ts := c.m.relation(rd.typ, rw.tupleset)
	tuples, err := c.q.reader.TuplesByObject(c.ctx, obj, rw.tupleset)
	if err != nil {
		return outcome{cut: noCut}, fmt.Errorf("policy: reading %s#%s: %w", obj, rw.tupleset, err)
	}
	if c.explain {
		c.logf(depth, "  %s from %s: %d parent tuple(s)", rw.relation, rw.tupleset, len(tuples))
	}
	res := outcome{cut: noCut}
	var condErr, walkErr error
	passed := false
	for i := range tuples {
		t := &tuples[i]
		if !live(t, c.now) {
			continue
		}
		p := parseSubjectFast(t.Subject)
		if p.userset() || p.wildcard() || !ts.accepts(refKey{typ: p.typ, cond: t.Condition}) || c.m.relation(p.typ, rw.relation) == nil {
			continue
		}
		met, err := c.condition(t, depth)
		if err != nil {
			condErr = cmp.Or(condErr, err)
			continue
		}
		if !met {
			continue
		}
		passed = true
		o, err := c.relation(t.Subject, rw.relation, depth+1)
		if o.ok {
			st := c.tupleStep(StepParent, t)
			st.Node = t.Subject + "#" + rw.relation
			o.path = c.prepend(st, o.path)
			return o, nil
		}
		res.cut = min(res.cut, o.cut)
		res.cycle = res.cycle || (err == nil && o.cycle)
		walkErr = cmp.Or(walkErr, err)
	}
	if passed {
		condErr = nil
	}
	return res, cmp.Or(walkErr, condErr)
}
