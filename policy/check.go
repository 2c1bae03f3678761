package policy

import (
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
}

type nodeKey struct{ obj, rel string }

// outcome is the result of evaluating one node.
type outcome struct {
	ok bool
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
		return outcome{cut: pos}, nil
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
				return o, nil // one failing branch decides
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
		base, err := c.rewrite(obj, rd, rw.children[0], depth)
		if err != nil || !base.ok {
			return base, err
		}
		if c.explain {
			c.logf(depth, "  but not %s:", rw.children[1].format(nil, true))
		}
		sub, err := c.rewrite(obj, rd, rw.children[1], depth)
		cut := min(base.cut, sub.cut)
		if err != nil {
			return outcome{cut: cut}, err
		}
		if sub.ok {
			return outcome{cut: sub.cut}, nil
		}
		base.cut = cut
		base.path = append(base.path, c.steps(Step{Kind: StepButNot, Node: obj + "#" + rd.name,
			Note: rw.children[1].format(nil, true)})...)
		return base, nil
	}
}

// direct looks at the tuples written on obj#rel: the subject itself, a
// wildcard of its type, or usersets that may contain it.
func (c *checker) direct(obj string, rd *relationDef, depth int) (outcome, error) {
	tuples, err := c.e.reader.TuplesByObject(c.ctx, obj, rd.name)
	if err != nil {
		return outcome{cut: noCut}, fmt.Errorf("policy: reading %s#%s: %w", obj, rd.name, err)
	}
	s := c.subj
	exactOK := rd.allows(refKey{typ: s.typ, rel: s.rel, wildcard: s.wildcard()})
	wildOK := !s.userset() && !s.wildcard() && rd.allows(refKey{typ: s.typ, wildcard: true})
	usersets := 0
	for i := range tuples {
		t := &tuples[i]
		if !live(t, c.now) {
			continue
		}
		if exactOK && t.Subject == c.subjStr {
			if c.explain {
				c.logf(depth, "  tuple %s matches", t)
			}
			return outcome{ok: true, cut: noCut, path: c.steps(Step{Kind: StepTuple, Tuple: t.String()})}, nil
		}
		if wildOK && isWildcardOf(t.Subject, s.typ) {
			if c.explain {
				c.logf(depth, "  tuple %s matches (wildcard)", t)
			}
			return outcome{ok: true, cut: noCut, path: c.steps(Step{Kind: StepWildcard, Tuple: t.String()})}, nil
		}
		if strings.IndexByte(t.Subject, '#') >= 0 {
			usersets++
		}
	}
	if c.explain {
		c.logf(depth, "  direct: %d tuple(s), none is %s; %d userset(s) to follow", len(tuples), c.subjStr, usersets)
	}
	res := outcome{cut: noCut}
	var firstErr error
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
		if !rd.allows(refKey{typ: us.typ, rel: us.rel}) {
			continue
		}
		o, err := c.relation(us.obj, us.rel, depth+1)
		if o.ok {
			o.path = c.prepend(Step{Kind: StepTuple, Tuple: t.String()}, o.path)
			return o, nil
		}
		res.cut = min(res.cut, o.cut)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return res, firstErr
}

// isWildcardOf reports whether s is "typ:*", without allocating.
func isWildcardOf(s, typ string) bool {
	return len(s) == len(typ)+2 && s[len(typ)] == ':' && s[len(typ)+1] == '*' && s[:len(typ)] == typ
}

// ttu follows "rel from tupleset": the parents named by obj#tupleset
// tuples, and rel on each of them.
func (c *checker) ttu(obj string, rd *relationDef, rw *rewrite, depth int) (outcome, error) {
	ts := c.m.relation(rd.typ, rw.tupleset)
	tuples, err := c.e.reader.TuplesByObject(c.ctx, obj, rw.tupleset)
	if err != nil {
		return outcome{cut: noCut}, fmt.Errorf("policy: reading %s#%s: %w", obj, rw.tupleset, err)
	}
	if c.explain {
		c.logf(depth, "  %s from %s: %d parent tuple(s)", rw.relation, rw.tupleset, len(tuples))
	}
	res := outcome{cut: noCut}
	var firstErr error
	for i := range tuples {
		t := &tuples[i]
		if !live(t, c.now) {
			continue
		}
		p := parseSubjectFast(t.Subject)
		if p.userset() || p.wildcard() || !ts.allows(refKey{typ: p.typ}) || c.m.relation(p.typ, rw.relation) == nil {
			continue
		}
		o, err := c.relation(t.Subject, rw.relation, depth+1)
		if o.ok {
			o.path = c.prepend(Step{Kind: StepParent, Node: t.Subject + "#" + rw.relation, Tuple: t.String()}, o.path)
			return o, nil
		}
		res.cut = min(res.cut, o.cut)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return res, firstErr
}
