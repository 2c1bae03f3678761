package commands

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// newList answers ListObjects: which objects of a type SUBJECT has
// RELATION on, with the same "what if" flags as check.
func newList(e *env) *cobra.Command {
	var w whatIf
	cmd := &cobra.Command{
		Use:   "list SUBJECT RELATION TYPE",
		Short: "List the objects of TYPE on which SUBJECT has RELATION",
		Long: "list answers with your own connection's request context, which model conditions read; " +
			"--context replaces some of its values and --contextual adds tuples for this one question.",
		Example: "  ssh bastion list user:alice act resource\n" +
			"  ssh bastion list user:alice act resource --contextual group:oncall#member@user:alice",
		Args: cobra.ExactArgs(3),
		RunE: func(_ *cobra.Command, args []string) error {
			subj, rel, typ := args[0], args[1], args[2]
			if !strings.Contains(subj, ":") {
				subj = "user:" + subj
			}
			// What someone else reaches is for admins to know.
			if subj != e.p.Subject() {
				if err := e.requireAdmin("list for " + subj); err != nil {
					return err
				}
			}
			rc, tuples, err := w.request(e)
			if err != nil {
				return &exitError{code: 2, msg: "list: " + err.Error()}
			}
			ctx := policy.WithRequest(e.ctx, policy.Request{Context: rc, Tuples: tuples})
			objs, err := e.deps.Policy.ListObjects(ctx, subj, rel, typ)
			if err != nil {
				return &exitError{code: 2, msg: "list: " + err.Error()}
			}
			d := map[string]string{"subject": subj, "relation": rel, "count": fmt.Sprint(len(objs))}
			w.details(d)
			if err := e.record(store.Event{Action: "policy.list", Target: typ, Details: d}); err != nil {
				return fmt.Errorf("the audit log cannot record this question now: %w", err)
			}
			rows := make([][]string, len(objs))
			for i, o := range objs {
				rows[i] = []string{o}
			}
			return e.render(objs, []string{"OBJECT"}, rows)
		},
	}
	w.register(cmd)
	return cmd
}
