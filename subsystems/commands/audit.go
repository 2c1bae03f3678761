package commands

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

func newAudit(e *env) *cobra.Command {
	var since, actor, action string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query the audit log (admins see everyone, others their own events)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f := store.EventFilter{Actor: actor, Action: action, Limit: limit}
			if since != "" {
				t, err := parseSince(since, e.deps.Clock())
				if err != nil {
					return err
				}
				f.Since = t
			}
			// Non-admins may only read their own trail: the audit log
			// records other people's source addresses and activity.
			if !e.isAdmin() {
				if actor != "" && actor != e.p.User {
					return &exitError{code: 1, msg: fmt.Sprintf("permission denied: only admins may read other users' audit events (%s is not an admin)", e.p.User)}
				}
				f.Actor = e.p.User
			}
			evs, err := e.deps.Audit.Query(e.ctx, f)
			if err != nil {
				return err
			}
			if evs == nil {
				evs = []store.Event{}
			}
			rows := make([][]string, 0, len(evs))
			for _, ev := range evs {
				rows = append(rows, []string{fmt.Sprint(ev.Seq), ev.Time.UTC().Format(time.RFC3339), ev.Actor, ev.Action,
					ev.Target, ev.Decision, ev.Reason, details(ev.Details)})
			}
			return e.render(evs, []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "DECISION", "REASON", "DETAILS"}, rows)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events newer than this: a duration (1h, 30m) or an RFC 3339 time")
	cmd.Flags().StringVar(&actor, "actor", "", "only events by this user")
	cmd.Flags().StringVar(&action, "action", "", "only this action, or a prefix ending in '.' (auth.)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many of the newest events (0 = all)")
	cmd.AddCommand(newAuditVerify(e), newAuditArchive(e))
	return cmd
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: use a duration such as 1h or an RFC 3339 time", s)
}

func details(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if m[k] != "" {
			parts = append(parts, k+"="+m[k])
		}
	}
	return strings.Join(parts, " ")
}
