package policy

import (
	"fmt"
	"strings"
)

// StepKind says how one step of an explanation leads closer to the subject.
type StepKind string

// The kinds of step in a granting path.
const (
	// StepTuple: a stored tuple. Its subject is the question's subject, or
	// a userset (group:ops#member) that the next steps resolve.
	StepTuple StepKind = "tuple"
	// StepWildcard: a stored tuple granting every subject of a type (user:*).
	StepWildcard StepKind = "wildcard"
	// StepComputed: the relation includes another relation of the same
	// object (define view: member).
	StepComputed StepKind = "computed"
	// StepParent: "rel from parent": Tuple names the parent, Node is the
	// relation on it that the next steps resolve.
	StepParent StepKind = "parent"
	// StepSelf: the question's subject is itself this userset.
	StepSelf StepKind = "self"
	// StepAnd: every operand of an "and" holds; their paths follow, one
	// level deeper.
	StepAnd StepKind = "and"
	// StepButNot: the subtracted operand (Note) does not hold.
	StepButNot StepKind = "but not"
)

// Step is one link of an explanation.
type Step struct {
	Kind  StepKind
	Depth int    // nesting level: operands of "and" are one deeper
	Node  string // object#relation this step leads to, if any
	Tuple string // the tuple used, if any
	Note  string // for StepButNot: the operand that does not hold
	// Condition names the condition of a conditional tuple, which held
	// with Values ("name=value, ...").
	Condition string `json:",omitempty"`
	Values    string `json:",omitempty"`
}

// condText is " (with NAME: values)" for a conditional step.
func (s Step) condText() string {
	if s.Condition == "" {
		return ""
	}
	return " (with " + s.Condition + ": " + s.Values + ")"
}

func (s Step) String() string {
	switch s.Kind {
	case StepTuple:
		return "<- " + s.Tuple + s.condText()
	case StepWildcard:
		return "<- " + s.Tuple + " (everyone)" + s.condText()
	case StepComputed:
		return "<- " + s.Node + " (computed)"
	case StepParent:
		return "<- " + s.Node + " (via " + s.Tuple + s.condText() + ")"
	case StepSelf:
		return "<- " + s.Node + " (the subject itself)"
	case StepAnd:
		return "<- " + s.Node + ": all of"
	case StepButNot:
		return "<- but not " + s.Note + ": does not hold"
	}
	return "<- " + string(s.Kind) + " " + s.Node + s.Tuple
}

// indent moves a path one level deeper (operands of "and"); the first step
// of each operand is marked so the operands can be told apart.
func indent(p []Step) []Step {
	out := make([]Step, len(p))
	for i, s := range p {
		s.Depth++
		out[i] = s
	}
	return out
}

// Explanation says why a Check was allowed or denied.
type Explanation struct {
	Subject, Relation, Object string
	Allowed                   bool
	// Path, when allowed, leads from Object#Relation down to Subject, one
	// step per rule or tuple used.
	Path []Step
	// Tried, when denied, lists what was evaluated, one line per attempt,
	// indented by depth.
	Tried []string
	// Conditions are the conditions evaluated on the way, in order.
	Conditions []ConditionCheck `json:",omitempty"`
}

// ConditionCheck is one evaluation of a tuple's condition.
type ConditionCheck struct {
	Tuple     string
	Condition string
	Met       bool
	// Values are the parameters the expression saw: "name=value, ...".
	Values string
	// Error, if set, says why the condition could not be evaluated (the
	// answer was then unknown, and did not grant).
	Error string `json:",omitempty"`
}

func (cc ConditionCheck) String() string {
	switch {
	case cc.Error != "":
		return fmt.Sprintf("condition %s of %s cannot be evaluated: %s", cc.Condition, cc.Tuple, cc.Error)
	case cc.Met:
		return fmt.Sprintf("condition %s of %s is met (%s)", cc.Condition, cc.Tuple, cc.Values)
	}
	return fmt.Sprintf("condition %s of %s is not met (%s)", cc.Condition, cc.Tuple, cc.Values)
}

// Unmet returns the conditions that were evaluated and did not hold (or
// could not be evaluated): on a denial, the grants that would have
// applied had their conditions held.
func (x Explanation) Unmet() []ConditionCheck {
	var out []ConditionCheck
	for _, c := range x.Conditions {
		if !c.Met {
			out = append(out, c)
		}
	}
	return out
}

// String prints the explanation, one step per line, for example:
//
//	allowed: user:alice act resource:web-1
//	  resource:web-1#act
//	  <- resource:web-1#admin (computed)
//	  <- project:payments#admin (via resource:web-1#project@project:payments)
//	  <- project:payments#admin@group:ops#member
//	  <- group:ops#member@user:alice
func (x Explanation) String() string {
	var b strings.Builder
	verdict := "denied"
	if x.Allowed {
		verdict = "allowed"
	}
	b.WriteString(verdict + ": " + x.Subject + " " + x.Relation + " " + x.Object + "\n")
	if x.Allowed {
		b.WriteString("  " + x.Object + "#" + x.Relation + "\n")
		for _, s := range x.Path {
			b.WriteString(strings.Repeat("  ", s.Depth+1) + s.String() + "\n")
		}
		return b.String()
	}
	if len(x.Tried) > 0 {
		b.WriteString("  tried:\n")
	}
	for _, t := range x.Tried {
		b.WriteString("    " + t + "\n")
	}
	if un := x.Unmet(); len(un) > 0 {
		b.WriteString("  conditions that did not hold:\n")
		for _, c := range un {
			b.WriteString("    " + c.String() + "\n")
		}
	}
	return b.String()
}
