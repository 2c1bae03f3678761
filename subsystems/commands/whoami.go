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
			groups := p.Groups
			if groups == nil {
				groups = []string{}
			}
			out := whoamiJSON{User: p.User, DisplayName: p.DisplayName, Method: p.Method, KeyFingerprint: p.KeyFingerprint,
				KeyType: p.KeyType, Groups: groups, SourceAddr: p.SourceAddr, AuthTime: p.AuthTime, Admin: e.isAdmin(),
				SessionID: p.SessionID, CertSerial: p.CertSerial, CertKeyID: p.CertKeyID}
			return e.render(out, []string{"FIELD", "VALUE"}, rows)
		},
	}
}

// whoamiJSON is whoami's -o json: the same fields as the table, groups
// always a list, admin always said.
type whoamiJSON struct {
	User           string    `json:"user"`
	DisplayName    string    `json:"display_name,omitempty"`
	Method         string    `json:"method"`
	KeyFingerprint string    `json:"key_fingerprint,omitempty"`
	KeyType        string    `json:"key_type,omitempty"`
	Groups         []string  `json:"groups"`
	SourceAddr     string    `json:"source_addr"`
	AuthTime       time.Time `json:"auth_time"`
	Admin          bool      `json:"admin"`
	SessionID      string    `json:"session_id"`
	CertSerial     uint64    `json:"cert_serial,omitempty"`
	CertKeyID      string    `json:"cert_key_id,omitempty"`
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
