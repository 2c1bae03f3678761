package commands

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

func newTuples(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "tuples", Short: "Add, remove and list relationship tuples", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	var expires time.Duration
	var cond condFlags
	add := &cobra.Command{
		Use: "add OBJECT#RELATION@SUBJECT...", Short: "Add tuples (needs admin on each object, or on the domain)",
		Example: "  ssh bastion tuples add resource:web-1#act@user:alice --expires 2h\n  ssh bastion tuples add project:payments#member@group:ops#member\n" +
			"  ssh bastion tuples add resource:web-1#act@group:oncall#member --condition on_shift " +
			"--context '{\"start\":\"2025-01-06T08:00:00Z\",\"end\":\"2025-01-06T16:00:00Z\"}'",
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := cond.values(e)
			if err != nil {
				return err
			}
			ts, err := e.parseTuplesWith(args, "tuples add", c)
			if err != nil {
				return err
			}
			if expires < 0 {
				return fmt.Errorf("--expires must be positive")
			}
			if expires > 0 {
				for i := range ts {
					ts[i].Expires = e.deps.Clock().Add(expires).UTC()
				}
			}
			if err := e.deps.Tuples.WriteTuples(e.ctx, ts, nil); err != nil {
				return err
			}
			for _, t := range ts {
				d := map[string]string{}
				if !t.Expires.IsZero() {
					d["expires"] = t.Expires.Format(time.RFC3339)
				}
				if t.Condition != "" {
					d["condition"] = t.Condition
					d["context"] = contextJSON(t.Context)
				}
				if err := e.record(store.Event{Action: "tuple.add", Target: t.String(), Details: d}); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "added %s%s%s\n", t, conditionNote(t), expiryNote(t))
			}
			return nil
		},
	}
	add.Flags().DurationVar(&expires, "expires", 0, "make the tuples expire after this long (e.g. 2h)")
	cond.register(add)
	rm := &cobra.Command{
		Use: "rm OBJECT#RELATION@SUBJECT...", Short: "Remove tuples", Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ts, err := e.parseTuples(args, "tuples rm")
			if err != nil {
				return err
			}
			if err := e.deps.Tuples.WriteTuples(e.ctx, nil, ts); err != nil {
				return err
			}
			for _, t := range ts {
				if err := e.record(store.Event{Action: "tuple.rm", Target: t.String()}); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "removed %s\n", t)
			}
			return nil
		},
	}
	var object, subject, relation string
	list := &cobra.Command{
		Use: "list", Short: "List live tuples (admins: all; others: their own)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			// Non-admins see only tuples naming themselves: the full
			// relationship graph reveals who can reach what.
			if !e.isAdmin() {
				if subject != "" && subject != e.p.Subject() {
					return e.requireAdmin("tuples list --subject " + subject)
				}
				subject = e.p.Subject()
			}
			var ts []store.Tuple
			var err error
			switch {
			case object != "":
				ts, err = e.deps.Tuples.TuplesByObject(e.ctx, object, relation)
			case subject != "":
				ts, err = e.deps.Tuples.TuplesBySubject(e.ctx, subject, "")
			default:
				ts, err = e.deps.Tuples.ListTuples(e.ctx)
			}
			if err != nil {
				return err
			}
			out := []store.Tuple{}
			rows := [][]string{}
			for _, t := range ts {
				if (subject != "" && t.Subject != subject) || (relation != "" && t.Relation != relation) {
					continue
				}
				out = append(out, t)
				exp := ""
				if !t.Expires.IsZero() {
					exp = t.Expires.UTC().Format(time.RFC3339)
				}
				rows = append(rows, []string{t.Object, t.Relation, t.Subject, exp, strings.TrimPrefix(conditionNote(t), " with ")})
			}
			return e.render(out, []string{"OBJECT", "RELATION", "SUBJECT", "EXPIRES", "CONDITION"}, rows)
		},
	}
	list.Flags().StringVar(&object, "object", "", "only tuples on this object (type:id)")
	list.Flags().StringVar(&subject, "subject", "", "only tuples with this subject")
	list.Flags().StringVar(&relation, "relation", "", "only this relation")
	cmd.AddCommand(add, rm, list)
	return cmd
}

// parseTuples parses and validates every argument against the model, and
// checks the caller may administer each object, before anything is
// written: bad input changes nothing.
func (e *env) parseTuples(args []string, what string) ([]store.Tuple, error) {
	return e.parseTuplesWith(args, what, store.Tuple{})
}

// parseTuplesWith is parseTuples for tuples that all carry the condition
// and context of c.
func (e *env) parseTuplesWith(args []string, what string, c store.Tuple) ([]store.Tuple, error) {
	m := e.deps.Policy.Model()
	var ts []store.Tuple
	for _, a := range args {
		t, err := policy.ParseTuple(a)
		if err != nil {
			return nil, err
		}
		t.Condition, t.Context = c.Condition, c.Context
		// The model decides which grants need which condition, and what
		// their context may hold, as the OpenFGA server does on a write.
		if err := m.ValidateTuple(t); err != nil {
			return nil, err
		}
		if err := e.refuseProjectTuple(what, t); err != nil {
			return nil, err
		}
		if err := e.requireAdminOn(what, t.Object); err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// requireAdminOn asks for admin on object when its type has an admin
// relation (so project admins manage their project), else on the domain.
// Domain admins pass first: an object not yet linked into the tenancy
// tree (a new project, a resource without one) has no admin of its own.
func (e *env) requireAdminOn(what, object string) error {
	typ, _, _ := strings.Cut(object, ":")
	if e.isAdmin() {
		return nil
	}
	if e.deps.Policy.Model().HasRelation(typ, "admin") {
		return e.requireRelation(what, "admin", object)
	}
	return e.requireAdmin(what)
}

// conditionNote is " with NAME {context}" for a conditional tuple.
func conditionNote(t store.Tuple) string {
	if t.Condition == "" {
		return ""
	}
	return " with " + t.Condition + " " + contextJSON(t.Context)
}

func contextJSON(c map[string]any) string {
	if len(c) == 0 {
		return "{}"
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprint(c)
	}
	return string(b)
}

func expiryNote(t store.Tuple) string {
	if t.Expires.IsZero() {
		return ""
	}
	return " (expires " + t.Expires.Format(time.RFC3339) + ")"
}

// condFlags are tuples add's --condition NAME and --context JSON.
type condFlags struct{ name, context string }

func (c *condFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.name, "condition", "", "the model's condition the tuples hold under (see `model show`)")
	cmd.Flags().StringVar(&c.context, "context", "", "the condition's parameters fixed in the tuples, as a JSON object")
}

// values returns a tuple carrying only the condition and its context.
func (c *condFlags) values(e *env) (store.Tuple, error) {
	var t store.Tuple
	if c.context != "" && c.name == "" {
		return t, fmt.Errorf("--context needs --condition: the context holds the parameters of a condition")
	}
	t.Condition = c.name
	if c.context != "" {
		ctx, err := e.jsonObject("--context", c.context)
		if err != nil {
			return t, err
		}
		t.Context = ctx
	}
	return t, nil
}
