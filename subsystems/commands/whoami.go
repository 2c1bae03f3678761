package commands

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/subsystems/stepup"
)

func newWhoami(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are and how you authenticated",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p := e.p
			mfa := boolWord(p.MFA)
			rows := [][]string{
				{"user", p.User},
				{"method", p.Method},
				{"fingerprint", p.KeyFingerprint},
				{"key type", p.KeyType},
				{"groups", strings.Join(p.Groups, ",")},
				{"source", p.SourceAddr},
				{"auth time", p.AuthTime.Format(time.RFC3339)},
				{"acr", p.ACR},
				{"amr", strings.Join(p.AMR, ",")},
				{"mfa", mfa},
				{"admin", boolWord(e.isAdmin())},
				{"connection", p.SessionID},
			}
			groups := p.Groups
			if groups == nil {
				groups = []string{}
			}
			amr := p.AMR
			if amr == nil {
				amr = []string{}
			}
			out := whoamiJSON{User: p.User, DisplayName: p.DisplayName, Method: p.Method, AuthMethod: p.Method, KeyFingerprint: p.KeyFingerprint,
				KeyType: p.KeyType, Groups: groups, SourceAddr: p.SourceAddr, AuthTime: p.AuthTime, ACR: p.ACR, AMR: amr, MFA: p.MFA,
				Admin: e.isAdmin(), SessionID: p.SessionID, CertSerial: p.CertSerial, CertKeyID: p.CertKeyID}
			if e.deps.StepUp != nil {
				// The strong login step-up requirements would use now: this
				// connection's own, or a step-up its key carries.
				if l, err := e.deps.StepUp.Last(e.ctx, p); err == nil {
					out.StrongLogin = &l
					if l.Strong {
						rows = append(rows, []string{"last strong login", l.Method + " " + stepup.Ago(e.deps.Clock().Sub(l.At)) + " (" + l.At.UTC().Format(time.RFC3339) + ")"})
					} else {
						rows = append(rows, []string{"last strong login", "none on this connection (run `" + e.deps.Host + " step-up`)"})
					}
				}
			}
			return e.render(out, []string{"FIELD", "VALUE"}, rows)
		},
	}
}

// whoamiJSON is whoami's -o json: the same fields as the table, groups
// and amr always lists, admin and mfa always said. method and
// auth_method are the same (method is the older name).
type whoamiJSON struct {
	User           string    `json:"user"`
	DisplayName    string    `json:"display_name,omitempty"`
	Method         string    `json:"method"`
	AuthMethod     string    `json:"auth_method"`
	KeyFingerprint string    `json:"key_fingerprint,omitempty"`
	KeyType        string    `json:"key_type,omitempty"`
	Groups         []string  `json:"groups"`
	SourceAddr     string    `json:"source_addr"`
	AuthTime       time.Time `json:"auth_time"`
	ACR            string    `json:"acr"`
	AMR            []string  `json:"amr"`
	MFA            bool      `json:"mfa"`
	Admin          bool      `json:"admin"`
	SessionID      string    `json:"session_id"`
	CertSerial     uint64    `json:"cert_serial,omitempty"`
	CertKeyID      string    `json:"cert_key_id,omitempty"`
	// StrongLogin is the strong login step-up requirements use now (the
	// connection's own login when it has none).
	StrongLogin *stepup.Login `json:"strong_login,omitempty"`
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
