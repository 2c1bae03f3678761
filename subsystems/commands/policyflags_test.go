package commands

import (
	"reflect"
	"testing"
)

// JSON typed as ssh users type it loses its quotes when the server splits
// the command line; the raw command line still has it.
func TestJSONObjectFromRawCommandLine(t *testing.T) {
	raw := `check user:bob act resource:web --context {"source_ip": "10.1.2.3", "tags": ["a}", "b"]} --explain`
	e := &env{raw: raw}
	// What the server's word splitting leaves of it.
	got, err := e.jsonObject("--context", `{source_ip: 10.1.2.3, tags: [a}, b]}`)
	want := map[string]any{"source_ip": "10.1.2.3", "tags": []any{"a}", "b"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("jsonObject = %v, %v; want %v", got, err, want)
	}
	// Quoted for the bastion too: the value itself is JSON.
	e.raw = `check --context '{"a":1}'`
	if got, err := e.jsonObject("--context", `{"a":1}`); err != nil || got["a"] != 1.0 {
		t.Fatalf("quoted JSON = %v, %v", got, err)
	}
	// --context=... works, and the first object after the flag is taken.
	if s, ok := rawObject(`x --context={"k":"v"} --context {"z":1}`, "--context"); !ok || s != `{"k":"v"}` {
		t.Fatalf("rawObject(--context=) = %q, %v", s, ok)
	}
	for _, bad := range []string{`[1]`, `null`, `{"a":1} {"b":2}`, `{`} {
		e.raw = "check --context " + bad
		if _, err := e.jsonObject("--context", bad); err == nil {
			t.Errorf("jsonObject(%s) accepted", bad)
		}
	}
}
