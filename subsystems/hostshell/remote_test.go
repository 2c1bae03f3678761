package hostshell

import "testing"

func TestAfterNameKeepsTheCommandByteForByte(t *testing.T) {
	for _, c := range []struct{ raw, name, want string }{
		{"web-1 -- echo 'a    b'", "web-1", "echo 'a    b'"},
		{"web-1 printf '%s|' 'x y' z", "web-1", "printf '%s|' 'x y' z"},
		{"  web-1\t--\techo $HOME *\n", "web-1", "echo $HOME *\n"},
		{"web-1", "web-1", ""},
		{"web-1 --", "web-1", ""},
		{"web-1 --x", "web-1", "--x"},
	} {
		got, ok := afterName(c.raw, c.name)
		if !ok || got != c.want {
			t.Errorf("afterName(%q) = %q, %v; want %q", c.raw, got, ok, c.want)
		}
	}
	if _, ok := afterName("'web-1' ls", "web-1"); ok {
		t.Error("a quoted name must fall back to quoting the words")
	}
	if _, ok := afterName("web-10 ls", "web-1"); ok {
		t.Error("a longer name is another Resource")
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Errorf("shellQuote: %s", got)
	}
}
