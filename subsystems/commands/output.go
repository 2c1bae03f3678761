package commands

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
)

// render prints v as JSON with -o json, or the rows as an aligned table.
func (e *env) render(v any, headers []string, rows [][]string) error {
	switch e.output {
	case "json":
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table", "":
		tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(headers, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown output format %q (use table or json)", e.output)
	}
}
