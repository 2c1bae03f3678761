package commands

import (
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newWhoami(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are and how you authenticated",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p := e.p
			rows := [][]string{
				{"user", p.User},
				{"method", p.Method},
				{"fingerprint", p.KeyFingerprint},
				{"key type", p.KeyType},
				{"groups", strings.Join(p.Groups, ",")},
				{"source", p.SourceAddr},
				{"auth time", p.AuthTime.Format(time.RFC3339)},
				{"admin", boolWord(e.isAdmin())},
				{"connection", p.SessionID},
			}
			return e.render(p, []string{"FIELD", "VALUE"}, rows)
		},
	}
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
