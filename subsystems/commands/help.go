package commands

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (m *Module) newHelp(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "help",
		Short: "List the commands",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			type entry struct {
				Name    string `json:"name"`
				Summary string `json:"summary"`
			}
			var list []entry
			var rows [][]string
			for _, c := range m.table.Commands() {
				list = append(list, entry{c.Name, c.Summary})
				rows = append(rows, []string{c.Name, c.Summary})
			}
			if err := e.render(list, []string{"COMMAND", "WHAT IT DOES"}, rows); err != nil {
				return err
			}
			if e.output != "json" {
				fmt.Fprintf(e.out, "\nRun `%s COMMAND --help` for the flags of one command.\n", e.deps.Host)
			}
			return nil
		},
	}
}
