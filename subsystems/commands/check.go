package commands

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

func newCheck(e *env) *cobra.Command {
	var explain bool
	cmd := &cobra.Command{
		Use:     "check SUBJECT RELATION OBJECT",
		Short:   "Check whether SUBJECT has RELATION on OBJECT; exit 0 if allowed, 1 if denied",
		Example: "  ssh bastion check user:alice act resource:web-1 --explain",
		Args:    cobra.ExactArgs(3),
		RunE: func(_ *cobra.Command, args []string) error {
			subj, rel, obj := args[0], args[1], args[2]
			if !strings.Contains(subj, ":") {
				subj = "user:" + subj
			}
			// Asking about someone else reveals who can reach what, so it
			// is for admins; anyone may ask about themselves.
			if subj != e.p.Subject() {
				if err := e.requireAdmin("check for " + subj); err != nil {
					return err
				}
			}
			x, err := e.deps.Policy.Explain(e.ctx, subj, rel, obj)
			if err != nil {
				return &exitError{code: 2, msg: "check: " + err.Error()}
			}
			if err := e.record(store.Event{Action: "policy.check", Target: obj, Decision: decision(x.Allowed),
				Details: map[string]string{"subject": subj, "relation": rel}}); err != nil {
				return fmt.Errorf("the audit log cannot record this check now: %w", err)
			}
			switch {
			case e.output == "json":
				if err := e.render(x, nil, nil); err != nil {
					return err
				}
			case explain:
				fmt.Fprint(e.out, x.String())
			default:
				fmt.Fprintln(e.out, decision(x.Allowed))
			}
			if !x.Allowed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&explain, "explain", false, "print the granting path, or what was tried")
	return cmd
}

func decision(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}
