package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/sshbastion/bastion/tui/termsafe"
)

// field is a one-line text input, edited at its end like the filter:
// typing and pasting append, backspace deletes a character, ctrl-u
// everything and ctrl-w a word. Control characters never get in, so what
// the user types cannot move the cursor or restyle the screen.
type field struct {
	value string
	limit int // in runes; 0: no limit
}

// key edits the field and reports whether k was an editing key.
func (f *field) key(k tea.KeyMsg) bool {
	switch k.Type {
	case tea.KeyBackspace, tea.KeyCtrlH:
		if r := []rune(f.value); len(r) > 0 {
			f.value = string(r[:len(r)-1])
		}
	case tea.KeyCtrlU:
		f.value = ""
	case tea.KeyCtrlW:
		v := strings.TrimRight(f.value, " ")
		if i := strings.LastIndexByte(v, ' '); i >= 0 {
			f.value = v[:i+1]
		} else {
			f.value = ""
		}
	case tea.KeySpace:
		f.add(" ")
	case tea.KeyRunes:
		if k.Alt {
			return false
		}
		f.add(string(k.Runes))
	default:
		return false
	}
	return true
}

func (f *field) add(s string) {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' ' // a pasted line break joins the line
		case r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return -1
		}
		return r
	}, s)
	v := []rune(f.value + s)
	if f.limit > 0 && len(v) > f.limit {
		v = v[:f.limit]
	}
	f.value = string(v)
}

// view is the field's text in w cells: its end, where the cursor is, and
// "_" as the cursor when focused (visible without colours too).
func (f field) view(w int, focused bool) string {
	s := safe(f.value) // pasted bidi controls get past add
	if focused {
		s += "_"
	}
	if w <= 1 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		r := []rune(s)
		for len(r) > 0 && ansi.StringWidth(string(r))+1 > w {
			r = r[1:]
		}
		s = "…" + string(r)
	}
	return s
}

// safe makes text from elsewhere (names, labels, addresses, a requester's
// reason, a backend's error) safe to draw, with the bastion's one
// sanitiser: control characters, escape sequences and bidi controls are
// shown escaped (\x1b, \n, \u202e), so that nobody can move the user's
// cursor, restyle, retitle or clear their terminal, forge a row, or make
// text read differently from what it is. Every user-supplied field goes
// through it before it is drawn; it is idempotent, so text may pass twice.
func safe(s string) string { return termsafe.String(s) }
