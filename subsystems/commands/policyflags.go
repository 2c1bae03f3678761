package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// maxContextInput bounds a --context value.
const maxContextInput = 16 << 10

// whatIf holds the flags of the commands that answer "what if" questions
// (check, list): --context JSON and repeatable --contextual TUPLE.
type whatIf struct {
	context    string
	contextual []string
}

func (w *whatIf) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.context, "context", "", `request context as a JSON object, over your own (e.g. '{"source_ip":"10.1.2.3"}')`)
	cmd.Flags().StringArrayVar(&w.contextual, "contextual", nil,
		"a tuple that counts for this question only, as if written (repeatable), e.g. group:ops#member@user:alice")
}

// request returns the context to ask the policy in: the caller's own
// request context (as every decision of this command has), with the
// values of --context over it, and the --contextual tuples.
func (w *whatIf) request(e *env) (ctxValues map[string]any, tuples []store.Tuple, err error) {
	ctxValues = maps.Clone(policy.RequestFrom(e.ctx).Context)
	if ctxValues == nil {
		ctxValues = map[string]any{}
	}
	if w.context != "" {
		over, err := e.jsonObject("--context", w.context)
		if err != nil {
			return nil, nil, err
		}
		maps.Copy(ctxValues, over)
	}
	for _, s := range w.contextual {
		t, err := policy.ParseTuple(s)
		if err != nil {
			return nil, nil, fmt.Errorf("--contextual: %w", err)
		}
		tuples = append(tuples, t)
	}
	return ctxValues, tuples, nil
}

// details renders the flags for an audit event.
func (w *whatIf) details(d map[string]string) {
	if w.context != "" {
		d["context"] = w.context
	}
	if len(w.contextual) > 0 {
		d["contextual"] = strings.Join(w.contextual, " ")
	}
}

// jsonObject parses a flag's JSON object. The server splits the command
// line into words as a shell would, which eats the double quotes of JSON
// typed as ssh users do (ssh bastion check ... --context '{"a":"b"}'
// reaches the server as --context {"a":"b"}, and splitting makes that
// {a:b}); so when the value is not JSON, the object is read from the raw
// command line, which still has it as typed.
func (e *env) jsonObject(flag, v string) (map[string]any, error) {
	if len(v) > maxContextInput {
		return nil, fmt.Errorf("%s is larger than %d bytes", flag, maxContextInput)
	}
	out, err := decodeObject(v)
	if err == nil {
		return out, nil
	}
	// The raw object is taken only if it is what the value was made of,
	// so that nothing but the flag's own value can be read this way.
	if raw, ok := rawObject(e.raw, flag); ok && unquoted(raw) == unquoted(v) {
		if out, rerr := decodeObject(raw); rerr == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s wants a JSON object such as '{\"source_ip\":\"10.1.2.3\"}': %v "+
		"(quote it for the bastion too, e.g. ssh bastion \"check ... %s '{\\\"a\\\":\\\"b\\\"}'\")", flag, err, flag)
}

// decodeObject decodes one JSON object, with numbers as float64 (as the
// OpenFGA server reads a context).
func decodeObject(s string) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	var out map[string]any
	if err := d.Decode(&out); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	if out == nil {
		return nil, fmt.Errorf("null is not an object")
	}
	return out, nil
}

// rawObject finds "flag {...}" or "flag={...}" in the raw command line
// and returns the balanced {...} after it (strings and escapes skipped),
// or false. Only the first occurrence is read.
func rawObject(raw, flag string) (string, bool) {
	for i := 0; ; {
		j := strings.Index(raw[i:], flag)
		if j < 0 {
			return "", false
		}
		k := i + j + len(flag)
		i = k
		if k < len(raw) && raw[k] == '=' {
			k++
		} else {
			for k < len(raw) && raw[k] == ' ' {
				k++
			}
		}
		if k >= len(raw) || raw[k] != '{' {
			continue
		}
		depth, inStr, esc := 0, false, false
		for n := k; n < len(raw); n++ {
			c := raw[n]
			switch {
			case esc:
				esc = false
			case inStr && c == '\\':
				esc = true
			case c == '"':
				inStr = !inStr
			case inStr:
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					return raw[k : n+1], true
				}
			}
		}
		return "", false
	}
}

// unquoted is s without quotes and backslashes, its spaces collapsed: what
// the server's word splitting (and the joining of a text flag's words)
// makes of a value.
func unquoted(s string) string {
	s = strings.NewReplacer(`"`, "", "'", "", `\`, "").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}
