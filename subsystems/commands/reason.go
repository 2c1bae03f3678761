package commands

import "strings"

// textFlags take free text. ssh joins the words after the host with
// spaces and the bastion splits them again, so `--reason "INC-7 look at
// logs"` typed in a shell arrives as four words: the words after such a
// flag, up to the next flag, are its value. (Resource names therefore go
// before --reason; the quoting that survives ssh, --reason "'INC-7 look'",
// works too.)
// --context (a JSON object) is one too, so that its spaces survive.
var textFlags = map[string]bool{"--reason": true, "--query": true, "--context": true}

// joinTextFlags returns args with the words following each text flag, up
// to the next argument that starts with "-", joined into its value.
func joinTextFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, inline, hasInline := strings.Cut(a, "=")
		if !textFlags[name] {
			out = append(out, a)
			continue
		}
		var words []string
		if hasInline {
			words = append(words, inline)
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			words = append(words, args[i])
		}
		if len(words) == 0 {
			out = append(out, a) // cobra says that the value is missing
			continue
		}
		out = append(out, name+"="+strings.Join(words, " "))
	}
	return out
}
