package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sshbastion/bastion/store"
)

// UsersetTree is who can reach an object#relation, as a tree: each node is
// a relation of an object (or an operand of "and" / "but not") with the
// subjects granted there directly and the nodes it includes.
type UsersetTree struct {
	// Node is "object#relation"; empty for an operand node.
	Node string
	// Rule is the definition evaluated here, in DSL syntax.
	Rule string
	// Op is "" when the subjects of Subjects and Children all count (or),
	// "and" or "but not" when Children are operands (for "but not": the
	// base, then what is taken away).
	Op string
	// Via says how the parent leads here: the tuple followed, "computed",
	// or "from RELATION: tuple" for a parent.
	Via string
	// Subjects are granted directly here: "user:alice", "user:*".
	Subjects []string
	Children []*UsersetTree
	// Cycle marks a node already being expanded higher up the tree; Repeat
	// one expanded earlier elsewhere in the tree. Neither is expanded again.
	Cycle, Repeat bool
}

// Expand returns the tree of everyone who has relation on object, following
// groups, computed relations and parents to the end (up to the depth limit).
func (e *Engine) Expand(ctx context.Context, object, relation string) (*UsersetTree, error) {
	m := e.model.Load()
	typ, _, err := ParseObject(object)
	if err != nil {
		return nil, err
	}
	if err := m.checkTarget(typ, relation); err != nil {
		return nil, err
	}
	q, err := e.newQuery(ctx, m)
	if err != nil {
		return nil, err
	}
	x := &expander{e: e, m: m, q: q, ctx: ctx, now: e.now(), onStack: map[nodeKey]bool{}, seen: map[nodeKey]bool{}}
	return x.node(object, relation, "", 1)
}

type expander struct {
	e       *Engine
	m       *Model
	q       *query
	ctx     context.Context
	now     time.Time
	onStack map[nodeKey]bool // cycle guard: nodes being expanded
	seen    map[nodeKey]bool // nodes already expanded once, to keep the tree finite and small
}

func (x *expander) node(obj, rel, via string, depth int) (*UsersetTree, error) {
	// Depth limit: the same bound as Check, for the same reason.
	if depth > x.e.maxDepth {
		return nil, depthError(x.e.maxDepth, obj, rel)
	}
	if err := x.ctx.Err(); err != nil {
		return nil, err
	}
	k := nodeKey{obj, rel}
	t := &UsersetTree{Node: obj + "#" + rel, Via: via}
	rd := x.m.relation(typeOf(obj), rel)
	if rd == nil {
		return t, nil
	}
	t.Rule = rd.rw.format(rd.direct, false)
	// Cycle guard: a group inside itself would expand forever.
	if x.onStack[k] {
		t.Cycle = true
		return t, nil
	}
	if x.seen[k] {
		t.Repeat = true
		return t, nil
	}
	x.onStack[k], x.seen[k] = true, true
	defer delete(x.onStack, k)
	return t, x.fill(t, obj, rd, rd.rw, depth)
}

func (x *expander) fill(t *UsersetTree, obj string, rd *relationDef, rw *rewrite, depth int) error {
	switch rw.op {
	case opThis:
		tuples, err := x.q.reader.TuplesByObject(x.ctx, obj, rd.name)
		if err != nil {
			return fmt.Errorf("policy: reading %s#%s: %w", obj, rd.name, err)
		}
		for i := range tuples {
			tp := &tuples[i]
			s := parseSubjectFast(tp.Subject)
			if !live(tp, x.now) || !rd.accepts(refKey{typ: s.typ, rel: s.rel, wildcard: s.wildcard(), cond: tp.Condition}) {
				continue
			}
			note := x.condNote(tp)
			if !s.userset() {
				t.Subjects = append(t.Subjects, tp.Subject+note)
				continue
			}
			c, err := x.node(s.obj, s.rel, tp.String()+note, depth+1)
			if err != nil {
				return err
			}
			t.Children = append(t.Children, c)
		}
	case opComputed:
		c, err := x.node(obj, rw.relation, "computed", depth+1)
		if err != nil {
			return err
		}
		t.Children = append(t.Children, c)
	case opTTU:
		ts := x.m.relation(rd.typ, rw.tupleset)
		tuples, err := x.q.reader.TuplesByObject(x.ctx, obj, rw.tupleset)
		if err != nil {
			return fmt.Errorf("policy: reading %s#%s: %w", obj, rw.tupleset, err)
		}
		for i := range tuples {
			tp := &tuples[i]
			p := parseSubjectFast(tp.Subject)
			if !live(tp, x.now) || p.userset() || p.wildcard() || !ts.accepts(refKey{typ: p.typ, cond: tp.Condition}) ||
				x.m.relation(p.typ, rw.relation) == nil {
				continue
			}
			c, err := x.node(tp.Subject, rw.relation, "from "+rw.tupleset+": "+tp.String()+x.condNote(tp), depth+1)
			if err != nil {
				return err
			}
			t.Children = append(t.Children, c)
		}
	case opUnion:
		for _, c := range rw.children {
			if err := x.fill(t, obj, rd, c, depth); err != nil {
				return err
			}
		}
	default: // and, but not: one operand node per operand
		op := &UsersetTree{Op: "and", Rule: rw.format(rd.direct, false)}
		if rw.op == opDifference {
			op.Op = "but not"
		}
		for _, c := range rw.children {
			operand := &UsersetTree{Rule: c.format(rd.direct, false)}
			if err := x.fill(operand, obj, rd, c, depth); err != nil {
				return err
			}
			op.Children = append(op.Children, operand)
		}
		t.Children = append(t.Children, op)
	}
	return nil
}

// condNote says, for a conditional tuple, whether its condition holds
// over the request context: the tree shows conditional grants with the
// answer they give now, rather than hiding them or counting them as
// unconditional.
func (x *expander) condNote(t *store.Tuple) string {
	if t.Condition == "" {
		return ""
	}
	ev, err := x.q.condition(t)
	switch {
	case err != nil:
		return " [with " + t.Condition + ": cannot be evaluated: " + err.Error() + "]"
	case ev.met:
		return " [with " + t.Condition + ": met]"
	}
	return " [with " + t.Condition + ": not met]"
}

// String prints the tree, one node per line, indented by depth.
func (t *UsersetTree) String() string {
	var b strings.Builder
	t.write(&b, 0)
	return b.String()
}

func (t *UsersetTree) write(b *strings.Builder, depth int) {
	pad := strings.Repeat("  ", depth)
	head := t.Node
	switch {
	case t.Op != "":
		head = t.Op + ":"
	case head == "":
		head = "(" + t.Rule + ")"
	case t.Rule != "":
		head += " = " + t.Rule
	}
	if t.Via != "" {
		head += "  [" + t.Via + "]"
	}
	if t.Cycle {
		head += "  (cycle: expanded above)"
	}
	if t.Repeat {
		head += "  (expanded earlier)"
	}
	b.WriteString(pad + head + "\n")
	for _, s := range t.Subjects {
		b.WriteString(pad + "  " + s + "\n")
	}
	for _, c := range t.Children {
		c.write(b, depth+1)
	}
}
