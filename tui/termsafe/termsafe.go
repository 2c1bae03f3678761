package termsafe

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Mode says which layout characters pass through.
type Mode int

const (
	// Line escapes every control character, line feeds and tabs included:
	// the result stays on one line and in one table cell.
	Line Mode = iota
	// Multiline keeps line feeds and tabs and escapes every other control
	// character (a carriage return could overwrite what the line says).
	Multiline
)

// String returns s safe to print on one line; see the package comment.
func String(s string) string { return Sanitize(s, Line) }

// Lines returns s safe to print, keeping its line feeds and tabs.
func Lines(s string) string { return Sanitize(s, Multiline) }

// Sanitize returns s with everything a terminal could act on escaped, as
// the mode says. A string that needs nothing is returned as it is.
func Sanitize(s string, m Mode) string {
	i := firstUnsafe(s, m)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII(c, m) {
				b.WriteByte(c)
			} else {
				escapeByte(&b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			// Not UTF-8: a terminal might read the byte as a C1 control.
			escapeByte(&b, c)
		case unsafeRune(r):
			escapeRune(&b, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// firstUnsafe returns the index of the first byte that needs escaping, or
// -1 when s is safe as it is.
func firstUnsafe(s string, m Mode) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !safeASCII(c, m) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || unsafeRune(r) {
			return i
		}
		i += n
	}
	return -1
}

func safeASCII(c byte, m Mode) bool {
	switch {
	case c >= 0x20 && c < 0x7f:
		return true
	case m == Multiline && (c == '\n' || c == '\t'):
		return true
	}
	return false
}

// unsafeRune reports the non-ASCII runes a terminal acts on or that
// reorder what is displayed: C1 controls and bidi controls.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // ALM, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}

const hexDigits = "0123456789abcdef"

func escapeByte(b *strings.Builder, c byte) {
	switch c {
	case '\n':
		b.WriteString(`\n`)
	case '\r':
		b.WriteString(`\r`)
	case '\t':
		b.WriteString(`\t`)
	default:
		b.WriteString(`\x`)
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
}

func escapeRune(b *strings.Builder, r rune) {
	b.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		b.WriteByte(hexDigits[(r>>uint(shift))&0xf])
	}
}

// JSON escapes, in JSON that encoding/json produced, the runes it leaves
// raw although a terminal may act on them: DEL, C1 controls and bidi
// controls become \u escapes. These runes can only occur inside JSON
// strings, where \uXXXX decodes to the same rune, so the document decodes
// to exactly the same values. (encoding/json already escapes C0 controls,
// U+2028 and U+2029, and replaces invalid UTF-8 with U+FFFD.) Input that is
// not valid UTF-8 has its invalid bytes replaced with \ufffd.
func JSON(doc []byte) []byte {
	clean := true
	for i := 0; i < len(doc); {
		if doc[i] < utf8.RuneSelf {
			if doc[i] == 0x7f {
				clean = false
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(doc[i:])
		if (r == utf8.RuneError && n == 1) || unsafeRune(r) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return doc
	}
	var b strings.Builder
	b.Grow(len(doc) + 32)
	for i := 0; i < len(doc); {
		c := doc[i]
		if c < utf8.RuneSelf {
			if c == 0x7f {
				escapeRune(&b, 0x7f)
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(doc[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			escapeRune(&b, utf8.RuneError)
		case unsafeRune(r):
			escapeRune(&b, r)
		default:
			b.Write(doc[i : i+n])
		}
		i += n
	}
	return []byte(b.String())
}

// Writer sanitises everything written through it.
type Writer struct {
	w    io.Writer
	mode Mode
}

// NewWriter returns a writer that sanitises each Write with mode m before
// passing it on to w. Each Write is sanitised on its own: a UTF-8 sequence
// split across two Writes is escaped as invalid bytes, so give it whole
// strings (fmt and text/tabwriter do).
func NewWriter(w io.Writer, m Mode) *Writer { return &Writer{w: w, mode: m} }

// Write implements io.Writer; it reports len(p) when everything was passed on.
func (w *Writer) Write(p []byte) (int, error) {
	s := Sanitize(string(p), w.mode)
	if _, err := io.WriteString(w.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}
