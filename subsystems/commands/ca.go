package commands

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCA(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "ca",
		Short: "Print the bastion's user CA public key, for TrustedUserCAKeys on target hosts",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if e.deps.CAPublicKey == "" {
				return fmt.Errorf("this bastion has no user CA")
			}
			if e.output == "json" {
				return e.render(map[string]string{"public_key": e.deps.CAPublicKey}, nil, nil)
			}
			fmt.Fprintln(e.out, e.deps.CAPublicKey)
			return nil
		},
	}
}
