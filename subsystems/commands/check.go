package commands

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

func newCheck(e *env) *cobra.Command {
	var explain bool
	var w whatIf
	cmd := &cobra.Command{
		Use:   "check SUBJECT RELATION OBJECT",
		Short: "Check whether SUBJECT has RELATION on OBJECT; exit 0 if allowed, 1 if denied",
		Long: "Check answers with your own connection's request context (source_ip, current_time, auth_method, " +
			"auth_time, auth_age, acr, mfa, session_kind), which model conditions read. --context replaces " +
			"some of those values, and --contextual adds tuples for this one question, to ask \"what if\".",
		Example: "  ssh bastion check user:alice act resource:web-1 --explain\n" +
			"  ssh bastion check user:alice act resource:web-1 --context '{\"source_ip\":\"10.1.2.3\"}' --explain\n" +
			"  ssh bastion check user:alice act resource:web-1 --contextual group:oncall#member@user:alice",
		Args: cobra.ExactArgs(3),
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
			rc, tuples, err := w.request(e)
			if err != nil {
				return &exitError{code: 2, msg: "check: " + err.Error()}
			}
			ctx := policy.WithRequest(e.ctx, policy.Request{Context: rc, Tuples: tuples})
			x, err := e.deps.Policy.Explain(ctx, subj, rel, obj)
			if err != nil {
				return &exitError{code: 2, msg: "check: " + err.Error()}
			}
			d := map[string]string{"subject": subj, "relation": rel}
			w.details(d)
			if err := e.record(store.Event{Action: "policy.check", Target: obj, Decision: decision(x.Allowed),
				Details: d}); err != nil {
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
				// A denial by a condition says which, even without
				// --explain: "denied" alone would hide the reason.
				for _, c := range x.Unmet() {
					fmt.Fprintln(e.out, "  "+c.String())
				}
			}
			if !x.Allowed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&explain, "explain", false, "print the granting path, or what was tried")
	w.register(cmd)
	return cmd
}

func decision(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}
