package termsafe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"web-1":                              "web-1",
		`C:\path "quoted" ~!@#$%^&*()`:       `C:\path "quoted" ~!@#$%^&*()`,
		"x\x1b]0;pwned\x07\x1b[2J":           `x\x1b]0;pwned\x07\x1b[2J`,
		"a\nb\rc\td":                         `a\nb\rc\td`,
		"nul\x00del\x7f":                     `nul\x00del\x7f`,
		"csi\u009b31m":                       `csi\u009b31m`,
		"evil\u202egpj.exe":                  `evil\u202egpj.exe`,
		"\u2066iso\u2069 \u200e\u200f\u061c": `\u2066iso\u2069 \u200e\u200f\u061c`,
		"ls\u2028ps\u2029":                   `ls\u2028ps\u2029`,
		"bad\xff\xc2utf8":                    `bad\xff\xc2utf8`,
		"Grüße, 東京, 🔒":                       "Grüße, 東京, 🔒",
		"":                                   "",
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLinesKeepsLineFeedsAndTabs(t *testing.T) {
	in := "model rejected:\n\tmodel.fga:3: bad\r\x1b[2Jhidden\n"
	want := "model rejected:\n\tmodel.fga:3: bad\\r\\x1b[2Jhidden\n"
	if got := Lines(in); got != want {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
}

func TestSafeStringIsNotCopied(t *testing.T) {
	s := strings.Repeat("abc", 100)
	if allocs := testing.AllocsPerRun(100, func() { _ = String(s) }); allocs != 0 {
		t.Fatalf("String allocated %v times on safe input", allocs)
	}
}

// encoding/json escapes C0 controls but leaves DEL, C1 and bidi controls
// raw; JSON escapes them and the document still decodes to the original.
func TestJSONRoundTripsExactly(t *testing.T) {
	orig := "x\x1b]0;pwned\x07\x1b[2J\n\r\t\x7f\u009b\u202e\u2066ok"
	raw, err := json.Marshal(map[string]string{"reason": orig})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(raw, 0x1b) >= 0 || bytes.IndexByte(raw, '\n') >= 0 {
		t.Fatalf("encoding/json left C0 raw: %q", raw)
	}
	if !bytes.Contains(raw, []byte("\u009b")) || !bytes.Contains(raw, []byte{0x7f}) {
		t.Fatalf("encoding/json now escapes C1 and DEL itself; JSON may be simpler: %q", raw)
	}
	safe := JSON(raw)
	checkSafe(t, string(safe), Line)
	var back map[string]string
	if err := json.Unmarshal(safe, &back); err != nil {
		t.Fatalf("JSON broke the document: %v\n%s", err, safe)
	}
	if back["reason"] != orig {
		t.Fatalf("round trip: %q, want %q", back["reason"], orig)
	}
	plain := []byte(`{"a": "b"}`)
	if got := JSON(plain); &got[0] != &plain[0] {
		t.Fatal("JSON copied a document that needed nothing")
	}
}

func TestWriter(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b, Multiline)
	p := []byte("ok\n\x1b[2J\n")
	n, err := w.Write(p)
	if err != nil || n != len(p) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b.String() != "ok\n\\x1b[2J\n" {
		t.Fatalf("wrote %q", b.String())
	}
}

// checkSafe asserts the properties every output has.
func checkSafe(t *testing.T, out string, m Mode) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("output is not valid UTF-8: %q", out)
	}
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c == 0x7f || (c < 0x20 && !(m == Multiline && (c == '\n' || c == '\t'))) {
			t.Fatalf("output has byte %#x at %d: %q", c, i, out)
		}
	}
	for _, r := range out {
		if unsafeRune(r) {
			t.Fatalf("output has %U: %q", r, out)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"plain", "x\x1b]0;pwned\x07\x1b[2J", "a\r\nb\tc", "\u009b2J", "\u202eabc",
		"\xff\xfe", "\xe2\x80", `back\slash \x1b`, "\x00\x7f\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range []Mode{Line, Multiline} {
			out := Sanitize(s, m)
			checkSafe(t, out, m)
			if again := Sanitize(out, m); again != out {
				t.Fatalf("not idempotent: %q -> %q -> %q", s, out, again)
			}
			printable := true
			for i := 0; i < len(s); i++ {
				if s[i] < 0x20 || s[i] >= 0x7f {
					printable = false
				}
			}
			if printable && out != s {
				t.Fatalf("printable ASCII changed: %q -> %q", s, out)
			}
			// Only escaping happens: nothing the input said is dropped.
			if len(out) < len(s) {
				t.Fatalf("output shorter than input: %q -> %q", s, out)
			}
		}
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		safe := JSON(raw)
		checkSafe(t, string(safe), Line)
		var back string
		if err := json.Unmarshal(safe, &back); err != nil {
			t.Fatalf("JSON(%q) is not JSON: %v", raw, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back != want && utf8.ValidString(s) {
			t.Fatalf("JSON round trip: %q, want %q", back, want)
		}
	})
}
