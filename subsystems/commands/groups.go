package commands

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

// memberSubject turns "alice" into user:alice and "group:ops" into the
// userset group:ops#member; full subjects pass through.
func memberSubject(s string) string {
	switch {
	case strings.HasPrefix(s, "group:") && !strings.Contains(s, "#"):
		return s + "#member"
	case !strings.Contains(s, ":"):
		return "user:" + s
	}
	return s
}

func newGroups(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "Manage group members (tuples on group:NAME#member)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	change := func(add bool) func(*cobra.Command, []string) error {
		return func(_ *cobra.Command, args []string) error {
			what := "groups rm-member"
			if add {
				what = "groups add-member"
			}
			var ts []store.Tuple
			for _, m := range args[1:] {
				ts = append(ts, store.Tuple{Object: "group:" + strings.TrimPrefix(args[0], "group:"), Relation: "member", Subject: memberSubject(m)})
			}
			for _, t := range ts {
				if err := e.deps.Policy.Model().ValidateTuple(t); err != nil {
					return err
				}
			}
			if err := e.requireAdmin(what); err != nil {
				return err
			}
			var err error
			action := "tuple.rm"
			if add {
				action = "tuple.add"
				err = e.deps.Tuples.WriteTuples(e.ctx, ts, nil)
			} else {
				err = e.deps.Tuples.WriteTuples(e.ctx, nil, ts)
			}
			if err != nil {
				return err
			}
			for _, t := range ts {
				if err := e.record(store.Event{Action: action, Target: t.String(), Reason: what}); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "%s %s\n", strings.TrimPrefix(action, "tuple."), t)
			}
			return nil
		}
	}
	add := &cobra.Command{Use: "add-member GROUP MEMBER...", Short: "Add users (alice) or groups (group:ops) to GROUP",
		Args: cobra.MinimumNArgs(2), RunE: change(true)}
	rm := &cobra.Command{Use: "rm-member GROUP MEMBER...", Short: "Remove members from GROUP",
		Args: cobra.MinimumNArgs(2), RunE: change(false)}
	list := &cobra.Command{
		Use: "list [GROUP]", Short: "List groups and their direct members", Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.requireAdmin("groups list"); err != nil {
				return err
			}
			var ts []store.Tuple
			var err error
			if len(args) == 1 {
				ts, err = e.deps.Tuples.TuplesByObject(e.ctx, "group:"+strings.TrimPrefix(args[0], "group:"), "member")
			} else {
				ts, err = e.deps.Tuples.ListTuples(e.ctx)
			}
			if err != nil {
				return err
			}
			members := map[string][]string{}
			for _, t := range ts {
				if strings.HasPrefix(t.Object, "group:") && t.Relation == "member" {
					g := strings.TrimPrefix(t.Object, "group:")
					members[g] = append(members[g], t.Subject)
				}
			}
			names := make([]string, 0, len(members))
			for g := range members {
				names = append(names, g)
				sort.Strings(members[g])
			}
			sort.Strings(names)
			rows := [][]string{}
			for _, g := range names {
				rows = append(rows, []string{g, strings.Join(members[g], ",")})
			}
			return e.render(members, []string{"GROUP", "MEMBERS"}, rows)
		},
	}
	cmd.AddCommand(add, rm, list)
	return cmd
}
