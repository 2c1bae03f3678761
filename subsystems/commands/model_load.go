package commands

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

func newModelLoad(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "load < model.fga", Short: "Validate and load a new model from stdin (admin only)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := e.requireAdmin("model load"); err != nil {
				return err
			}
			src, err := io.ReadAll(io.LimitReader(e.in, maxModelInput+1))
			if err != nil {
				return err
			}
			if len(src) > maxModelInput {
				return fmt.Errorf("model is larger than %d bytes", maxModelInput)
			}
			// The new model is validated completely before it replaces the
			// old one; on any error the old model stays in force. Beyond
			// what the DSL allows, it must keep every type and relation the
			// bastion checks or writes: a model without domain#admin or
			// resource#act would lock every admin out and cut every session.
			m, err := policy.LoadBastionModel(string(src))
			if err != nil {
				e.recordRefusal(store.Event{Action: "model.load", Decision: "deny", Reason: err.Error(),
					Details: map[string]string{"bytes": fmt.Sprint(len(src)), "sha256": sourceHash(string(src))}})
				return &exitError{code: 1, msg: "model rejected; the previous model stays in force:\n" + err.Error()}
			}
			mv, err := e.deps.Models.AppendModel(e.ctx, store.NewModelVersion(string(src), e.p.User, "load", 0, e.deps.Clock()))
			if err != nil {
				return fmt.Errorf("saving the model: %w", err)
			}
			e.deps.Policy.SetModel(m)
			if err := e.record(store.Event{Action: "model.load", Target: fmt.Sprintf("version %d", mv.Version),
				Details: map[string]string{"version": fmt.Sprint(mv.Version), "bytes": fmt.Sprint(mv.Size), "sha256": mv.SHA256}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "model loaded as version %d: %d types (sha256 %s); undo with: %s model rollback VERSION\n",
				mv.Version, len(m.Types()), mv.SHA256[:12], e.deps.Host)
			return nil
		},
	}
}
