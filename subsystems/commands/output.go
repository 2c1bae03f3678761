package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/sshbastion/bastion/tui/termsafe"
)

// render prints v as JSON with -o json, or the rows as an aligned table.
func (e *env) render(v any, headers []string, rows [][]string) error {
	switch e.output {
	case "json":
		// One rule for every command: a list is a JSON array, [] when
		// empty, never null (and an empty map is {}).
		switch rv := reflect.ValueOf(v); {
		case v == nil, rv.Kind() == reflect.Slice && rv.IsNil():
			v = []any{}
		case rv.Kind() == reflect.Map && rv.IsNil():
			v = map[string]any{}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		// encoding/json escapes C0 controls but leaves DEL, C1 and bidi
		// controls raw; termsafe.JSON escapes those too, with \u escapes
		// that decode to the same string, so the output stays exact.
		_, err := e.out.Write(termsafe.JSON(buf.Bytes()))
		return err
	case "table", "":
		tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, tableLine(headers))
		for _, r := range rows {
			fmt.Fprintln(tw, tableLine(r))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown output format %q (use table or json)", termsafe.String(e.output))
	}
}

// tableLine sanitises every cell: cells hold what users wrote (login names
// of failed logins, request reasons, labels), and a raw ESC could restyle
// or clear the reader's terminal, a line feed or tab forge a row or a
// column. Escaped, they show as \x1b, \n, \t.
func tableLine(cells []string) string {
	safe := make([]string, len(cells))
	for i, c := range cells {
		safe[i] = termsafe.String(c)
	}
	return strings.Join(safe, "\t")
}
