package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "bastion",
		Short:         "An SSH-native bastion: one door to hosts, clusters and TCP services",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newAdminCmd(), newMigrateCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bastion:", err)
		os.Exit(1)
	}
}
