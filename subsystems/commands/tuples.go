package commands

import (
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
	add := &cobra.Command{
		Use: "add OBJECT#RELATION@SUBJECT...", Short: "Add tuples (needs admin on each object, or on the domain)",
		Example: "  ssh bastion tuples add resource:web-1#act@user:alice --expires 2h\n  ssh bastion tuples add project:payments#member@group:ops#member",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ts, err := e.parseTuples(args, "tuples add")
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
				if err := e.record(store.Event{Action: "tuple.add", Target: t.String(), Details: d}); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "added %s%s\n", t, expiryNote(t))
			}
			return nil
		},
	}
	add.Flags().DurationVar(&expires, "expires", 0, "make the tuples expire after this long (e.g. 2h)")
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
				rows = append(rows, []string{t.Object, t.Relation, t.Subject, exp})
			}
			return e.render(out, []string{"OBJECT", "RELATION", "SUBJECT", "EXPIRES"}, rows)
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
	m := e.deps.Policy.Model()
	var ts []store.Tuple
	for _, a := range args {
		t, err := policy.ParseTuple(a)
		if err != nil {
			return nil, err
		}
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

func expiryNote(t store.Tuple) string {
	if t.Expires.IsZero() {
		return ""
	}
	return " (expires " + t.Expires.Format(time.RFC3339) + ")"
}
