package commands

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

func newModelHistory(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "history", Short: "List the stored versions of the model: when, who, how, its hash and size", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			// Who changed the model and when is the admins' business, as
			// the audit log is.
			if err := e.requireAdmin("model history"); err != nil {
				return err
			}
			if e.deps.Models == nil {
				return fmt.Errorf("this bastion keeps no model history")
			}
			vs, err := e.deps.Models.ModelVersions(e.ctx)
			if err != nil {
				return err
			}
			inForce := sourceHash(e.deps.Policy.Model().Source())
			current := uint64(0)
			for _, v := range vs {
				if v.SHA256 == inForce {
					current = v.Version
				}
			}
			out := make([]store.ModelVersion, 0, len(vs))
			rows := make([][]string, 0, len(vs))
			for _, v := range vs {
				mark, from := "", ""
				if v.Version == current {
					mark = "*"
				}
				if v.From != 0 {
					from = fmt.Sprint(v.From)
				}
				rows = append(rows, []string{fmt.Sprint(v.Version), v.Time.UTC().Format(time.RFC3339), v.Actor, v.Action, from,
					v.SHA256[:min(12, len(v.SHA256))], fmt.Sprint(v.Size), mark})
				v.Source = "" // `model show --version N` prints it
				out = append(out, v)
			}
			return e.render(out, []string{"VERSION", "TIME", "ACTOR", "ACTION", "FROM", "SHA256", "BYTES", "IN FORCE"}, rows)
		},
	}
}
