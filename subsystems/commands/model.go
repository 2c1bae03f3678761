package commands

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// maxModelInput bounds what `model load` reads.
const maxModelInput = 1 << 20

func newModel(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Show or load the authorization model (OpenFGA DSL)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	show := &cobra.Command{
		Use: "show", Short: "Print the model in force", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprint(e.out, e.deps.Policy.Model().Source())
			return nil
		},
	}
	load := &cobra.Command{
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
			// old one; on any error the old model stays in force.
			m, err := policy.LoadModel(string(src))
			if err != nil {
				_ = e.record(store.Event{Action: "model.load", Decision: "deny", Reason: err.Error()})
				return &exitError{code: 1, msg: "model rejected; the previous model stays in force:\n" + err.Error()}
			}
			if err := e.deps.Models.SaveModel(e.ctx, string(src)); err != nil {
				return fmt.Errorf("saving the model: %w", err)
			}
			e.deps.Policy.SetModel(m)
			if err := e.record(store.Event{Action: "model.load", Details: map[string]string{"bytes": fmt.Sprint(len(src))}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "model loaded: %d types\n", len(m.Types()))
			return nil
		},
	}
	cmd.AddCommand(show, load)
	return cmd
}
