package commands

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

func newModelRollback(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "rollback VERSION", Short: "Put an earlier version of the model back in force, as a new version (admin only)",
		Example: "  ssh bastion model history\n  ssh bastion model rollback 1", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.requireAdmin("model rollback"); err != nil {
				return err
			}
			old, err := e.modelVersion(args[0])
			if err != nil {
				return err
			}
			target := fmt.Sprintf("version %d", old.Version)
			// Checked again, as on load: the version may predate the
			// requirements (or a newer bastion may require more).
			m, err := policy.LoadBastionModel(old.Source)
			if err != nil {
				e.recordRefusal(store.Event{Action: "model.rollback", Target: target, Decision: "deny", Reason: err.Error()})
				return &exitError{code: 1, msg: fmt.Sprintf("model version %d cannot be put back; the model in force stays:\n%v", old.Version, err)}
			}
			// History only grows: the rollback is a new version, a copy of
			// the old one, so that it too shows who did it and when.
			mv, err := e.deps.Models.AppendModel(e.ctx, store.NewModelVersion(old.Source, e.p.User, "rollback", old.Version, e.deps.Clock()))
			if err != nil {
				return fmt.Errorf("saving the model: %w", err)
			}
			e.deps.Policy.SetModel(m)
			if err := e.record(store.Event{Action: "model.rollback", Target: target, Details: map[string]string{
				"version": fmt.Sprint(mv.Version), "from": fmt.Sprint(old.Version), "bytes": fmt.Sprint(mv.Size), "sha256": mv.SHA256}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "model version %d is in force again, as version %d: %d types (sha256 %s)\n",
				old.Version, mv.Version, len(m.Types()), mv.SHA256[:12])
			return nil
		},
	}
}
