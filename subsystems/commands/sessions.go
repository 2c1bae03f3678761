package commands

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

func newSessions(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "sessions", Short: "List your sessions (admins: everyone's); `sessions kill ID` revokes one", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			user := e.p.User
			if e.isAdmin() {
				user = ""
			}
			ss, err := e.deps.Sessions.List(e.ctx, user, all)
			if err != nil {
				return err
			}
			if ss == nil {
				ss = []store.Session{}
			}
			rows := [][]string{}
			now := e.deps.Clock()
			for _, s := range ss {
				left := ""
				if s.State == "open" {
					left = s.Expires.Sub(now).Round(time.Second).String()
				}
				rows = append(rows, []string{s.ID, s.User, s.Kind, s.Resource, s.Target, s.State, s.Opened.Format(time.RFC3339),
					left, strconv.FormatInt(s.BytesIn, 10), strconv.FormatInt(s.BytesOut, 10), s.Replica, s.Reason})
			}
			return e.render(ss, []string{"ID", "USER", "KIND", "RESOURCE", "TARGET", "STATE", "OPENED", "TTL LEFT", "IN", "OUT", "REPLICA", "REASON"}, rows)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include ended sessions")
	kill := &cobra.Command{
		Use: "kill ID", Short: "Revoke a live session: its channels close at once", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, ok := e.deps.Sessions.Get(args[0])
			if !ok {
				return fmt.Errorf("no live session %s (see `sessions`)", args[0])
			}
			// Users may end their own sessions; ending anyone else's is
			// a revocation by an admin of the Resource (its project's, or
			// a domain admin).
			if s.User != e.p.User {
				if err := e.requireResourceAdmin("sessions kill of "+s.User+"'s session on "+s.Resource, s.Resource, "end "+s.User+"'s sessions"); err != nil {
					return err
				}
			}
			// The revocation is on record before it happens.
			if err := e.record(store.Event{Action: "session.revoke", Target: s.Resource,
				Details: map[string]string{"session": s.ID, "user": s.User}}); err != nil {
				return fmt.Errorf("the audit log cannot record this revocation now: %w", err)
			}
			s, err := e.deps.Sessions.Kill(args[0])
			if err != nil {
				return fmt.Errorf("session %s: %v", args[0], err)
			}
			fmt.Fprintf(e.out, "revoked %s (%s %s to %s)\n", s.ID, s.User, s.Kind, s.Resource)
			return nil
		},
	}
	cmd.AddCommand(kill)
	return cmd
}
