package policy

import "github.com/sshbastion/bastion/store"

// condition evaluates a tuple's condition over the question's request
// context (true for a tuple without one). Explain records each one.
func (c *checker) condition(t *store.Tuple, depth int) (bool, error) {
	if t.Condition == "" {
		return true, nil
	}
	ev, err := c.q.condition(t)
	if c.explain {
		cc := ConditionCheck{Tuple: t.String(), Condition: t.Condition, Met: ev.met, Values: formatValues(ev.values)}
		verdict := "not met"
		switch {
		case err != nil:
			cc.Error = err.Error()
			verdict = "cannot be evaluated: " + err.Error()
		case ev.met:
			verdict = "met"
		}
		c.conds = append(c.conds, cc)
		c.logf(depth, "  tuple %s: condition %s %s (%s)", t, t.Condition, verdict, cc.Values)
	}
	return ev.met, err
}

// tupleStep is the explanation step of a granting tuple, naming its
// condition and the values that met it.
func (c *checker) tupleStep(kind StepKind, t *store.Tuple) Step {
	st := Step{Kind: kind, Tuple: t.String()}
	if c.explain && t.Condition != "" {
		st.Condition = t.Condition
		if n := len(c.conds); n > 0 && c.conds[n-1].Tuple == st.Tuple {
			st.Values = c.conds[n-1].Values
		}
	}
	return st
}
