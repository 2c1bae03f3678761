package policy

import (
	"fmt"
	"sort"

	"github.com/sshbastion/bastion/store"
)

// buildValid fills r.valid from r.direct. A tuple counts when its subject
// type is in the restrictions (with any condition) and its condition
// matches: without one, some restriction of that subject type must take
// it without a condition; with one, some restriction of the subject's
// type must name that condition. These are the OpenFGA server's rules,
// quirks included (the condition is matched on the subject's type only).
func (r *relationDef) buildValid() {
	r.valid = map[refKey]struct{}{}
	conds := []string{""}
	for _, d := range r.direct {
		if d.Condition != "" {
			conds = append(conds, d.Condition)
		}
	}
	for k := range r.allowed {
		for _, c := range conds {
			if r.condMatches(k, c) {
				kc := k
				kc.cond = c
				r.valid[kc] = struct{}{}
			}
		}
	}
}

func (r *relationDef) condMatches(k refKey, cond string) bool {
	for _, d := range r.direct {
		if d.Type != k.typ {
			continue
		}
		if cond != "" {
			if d.Condition == cond {
				return true
			}
			continue
		}
		switch {
		case d.Condition != "":
		case d.Relation != "" && d.Relation != k.rel:
		case d.Wildcard && !k.wildcard:
		case d.Relation == "" && !d.Wildcard && k.wildcard:
		default:
			return true
		}
	}
	return false
}

// ValidateTuple checks a tuple against the model as the OpenFGA server
// checks a write: the object's type and the relation exist; the subject's
// type exists, and so does its relation for a userset; the relation's
// type restrictions accept the subject's type; and the condition is
// right: none where the restrictions take the subject without one, one
// they name for it otherwise, and a context whose keys are parameters of
// that condition with values of their types. The engine ignores stored
// tuples that fail the type and condition parts of this check.
func (m *Model) ValidateTuple(t store.Tuple) error {
	obj, rel, subj := t.Object, t.Relation, t.Subject
	if err := ValidateTupleSyntax(t); err != nil {
		return err
	}
	s, _ := parseSubject(subj)
	if err := m.checkSubject(s, "tuple "+t.String()); err != nil {
		return err
	}
	typ := typeOf(obj)
	if m.types[typ] == nil {
		return fmt.Errorf("%w tuple %s: type %q is not in the model", ErrInvalid, t, typ)
	}
	rd := m.relation(typ, rel)
	if rd == nil {
		return fmt.Errorf("%w tuple %s: type %q has no relation %q", ErrInvalid, t, typ, rel)
	}
	k := refKey{typ: s.typ, rel: s.rel, wildcard: s.wildcard()}
	if !rd.allows(k) {
		return fmt.Errorf("%w tuple %s: %s#%s accepts only %s", ErrInvalid, t, typ, rel,
			(&rewrite{op: opThis}).format(rd.direct, false))
	}
	if t.Condition == "" {
		if len(t.Context) > 0 {
			return fmt.Errorf("%w tuple %s: a context is given but no condition", ErrInvalid, t)
		}
		if !rd.accepts(k) {
			return fmt.Errorf("%w tuple %s: %s#%s takes %s only with a condition: %s (add --condition NAME)",
				ErrInvalid, t, typ, rel, k.String(), (&rewrite{op: opThis}).format(rd.direct, false))
		}
		return nil
	}
	cd := m.conds[t.Condition]
	if cd == nil {
		return fmt.Errorf("%w tuple %s: the model has no condition %q", ErrInvalid, t, t.Condition)
	}
	k.cond = t.Condition
	if !rd.accepts(k) {
		return fmt.Errorf("%w tuple %s: %s#%s does not take condition %s for %s: %s",
			ErrInvalid, t, typ, rel, t.Condition, s.typ, (&rewrite{op: opThis}).format(rd.direct, false))
	}
	if err := cd.validateContext(t.Context); err != nil {
		return fmt.Errorf("%w tuple %s: %v", ErrInvalid, t, err)
	}
	return nil
}

func (k refKey) String() string {
	return TypeRef{Type: k.typ, Relation: k.rel, Wildcard: k.wildcard, Condition: k.cond}.String()
}

// checkSubject refuses a subject whose type, or userset relation, the
// model does not have: an error, as in OpenFGA, not a silent "no".
func (m *Model) checkSubject(s subject, what string) error {
	if m.types[s.typ] == nil {
		return fmt.Errorf("%w %s: subject type %q is not in the model", ErrInvalid, what, s.typ)
	}
	if s.userset() && m.relation(s.typ, s.rel) == nil {
		return fmt.Errorf("%w %s: type %q has no relation %q (in subject %s)", ErrInvalid, what, s.typ, s.rel, s.obj+"#"+s.rel)
	}
	return nil
}

// Conditions returns the names of the model's conditions, sorted.
func (m *Model) Conditions() []string {
	out := make([]string, 0, len(m.conds))
	for n := range m.conds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ConditionSignature returns a condition's head, as in "on_shift(end:
// timestamp, start: timestamp)", or "" if the model has no such condition.
func (m *Model) ConditionSignature(name string) string {
	if cd := m.conds[name]; cd != nil {
		return cd.Signature()
	}
	return ""
}
