package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

// CertRevocations keeps the serials of revoked user certificates, which
// certificate logins check.
type CertRevocations interface {
	RevokeCert(ctx context.Context, r store.CertRevocation) error
	ListCertRevocations(ctx context.Context) ([]store.CertRevocation, error)
}

// maxRevokeReason bounds --reason: it is repeated in every refused login's
// audit event.
const maxRevokeReason = 200

func newCerts(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Revoke user certificates and list revoked serials (admin only)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	var reason string
	revoke := &cobra.Command{
		Use: "revoke SERIAL", Short: "Revoke the user certificate with SERIAL: it can no longer log in", Args: cobra.ExactArgs(1),
		Example: `  ssh bastion certs revoke 42 --reason "lost laptop"`,
		RunE: func(_ *cobra.Command, args []string) error {
			// Revoking cuts someone's access: it is an admin's decision.
			if err := e.requireAdmin("certs revoke"); err != nil {
				return err
			}
			if e.deps.CertRevocations == nil {
				return fmt.Errorf("certificate revocation is not available on this bastion")
			}
			serial, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("invalid serial %q: give the decimal serial that ssh-keygen -L shows", args[0])
			}
			// ssh-keygen signs with serial 0 unless told otherwise (-z), so
			// 0 is shared by every such certificate; revoking it would lock
			// out all of them. OpenSSH's KRLs refuse serial 0 for the same
			// reason.
			if serial == 0 {
				return fmt.Errorf("refusing to revoke serial 0: it is the default of every certificate signed without -z; " +
					"let such a certificate expire, or rotate the CA")
			}
			reason = strings.TrimSpace(reason)
			if err := checkRevokeReason(reason); err != nil {
				return err
			}
			r := store.CertRevocation{Serial: serial, Reason: reason, By: e.p.User, At: e.deps.Clock().UTC()}
			if err := e.deps.CertRevocations.RevokeCert(e.ctx, r); err != nil {
				return err
			}
			if err := e.record(store.Event{Action: "cert.revoke", Target: "cert:" + args[0], Reason: reason,
				Details: map[string]string{"serial": strconv.FormatUint(serial, 10), "reason": reason}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "revoked certificate serial %d: %s\n", serial, reason)
			return nil
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why (required; shown in the audit event of every refused login)")
	_ = revoke.MarkFlagRequired("reason")

	list := &cobra.Command{
		Use: "revoked", Short: "List revoked certificate serials", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			// Reasons can say more than a user should read ("compromised",
			// who left): the list is for admins.
			if err := e.requireAdmin("certs revoked"); err != nil {
				return err
			}
			if e.deps.CertRevocations == nil {
				return fmt.Errorf("certificate revocation is not available on this bastion")
			}
			rs, err := e.deps.CertRevocations.ListCertRevocations(e.ctx)
			if err != nil {
				return err
			}
			if rs == nil {
				rs = []store.CertRevocation{}
			}
			rows := [][]string{}
			for _, r := range rs {
				rows = append(rows, []string{strconv.FormatUint(r.Serial, 10), r.At.UTC().Format(time.RFC3339), r.By, r.Reason})
			}
			return e.render(rs, []string{"SERIAL", "REVOKED", "BY", "REASON"}, rows)
		},
	}
	cmd.AddCommand(revoke, list)
	return cmd
}

// checkRevokeReason keeps reasons to one short printable line: they end up
// in audit events and in tables.
func checkRevokeReason(reason string) error {
	if reason == "" {
		return fmt.Errorf("--reason is required: say why, for whoever reads the audit log")
	}
	if len(reason) > maxRevokeReason {
		return fmt.Errorf("--reason is %d bytes; keep it under %d", len(reason), maxRevokeReason)
	}
	if !utf8.ValidString(reason) || strings.IndexFunc(reason, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("--reason must be one line of printable text")
	}
	return nil
}
