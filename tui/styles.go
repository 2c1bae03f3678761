package tui

import (
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// styles are the lipgloss styles of one TUI, bound to one renderer.
type styles struct {
	profile termenv.Profile
	lock    string // the glyph that marks locked Resources
	stepUp  string // the glyph that marks Resources needing a step-up

	header, headerDim, tab, tabOn lipgloss.Style
	filter, placeholder, count    lipgloss.Style
	colHead, selected, locked     lipgloss.Style
	lockedSel, rule, label, cmd   lipgloss.Style
	dim, status, errText, key     lipgloss.Style
	pending                       lipgloss.Style // the header's "N pending"
}

// envLookup returns the last value of key in env.
func envLookup(env []string, key string) (string, bool) {
	val, ok := "", false
	for _, kv := range env {
		if k, v, found := strings.Cut(kv, "="); found && k == key {
			val, ok = v, true
		}
	}
	return val, ok
}

// colorProfile decides the colours from the client's environment, never
// from the server's own terminal: no colours with NO_COLOR (any non-empty
// value, see no-color.org), with TERM=dumb or without TERM.
func colorProfile(env []string) termenv.Profile {
	if v, ok := envLookup(env, "NO_COLOR"); ok && v != "" {
		return termenv.Ascii
	}
	term, _ := envLookup(env, "TERM")
	if term == "" || term == "dumb" {
		return termenv.Ascii
	}
	ct, _ := envLookup(env, "COLORTERM")
	switch strings.ToLower(ct) {
	case "truecolor", "24bit":
		return termenv.TrueColor
	}
	if strings.Contains(term, "256color") || strings.Contains(term, "direct") {
		return termenv.ANSI256
	}
	return termenv.ANSI
}

func newStyles(out io.Writer, env []string) styles {
	if out == nil {
		out = io.Discard
	}
	r := lipgloss.NewRenderer(out)
	p := colorProfile(env)
	r.SetColorProfile(p)
	r.SetHasDarkBackground(true) // never query the client's terminal
	s := styles{profile: p, lock: "🔒", stepUp: "🔑"}
	if term, _ := envLookup(env, "TERM"); term == "" || term == "dumb" {
		s.lock, s.stepUp = "!!", "^^"
	}
	ns := r.NewStyle
	accent := lipgloss.Color("63")
	grey := lipgloss.Color("241")
	s.header = ns().Bold(true).Foreground(lipgloss.Color("230")).Background(accent)
	s.headerDim = ns().Foreground(lipgloss.Color("252")).Background(accent)
	s.tab = ns().Foreground(lipgloss.Color("252")).Background(accent)
	s.tabOn = ns().Bold(true).Underline(true).Foreground(lipgloss.Color("230")).Background(accent)
	s.filter = ns().Foreground(lipgloss.Color("212"))
	s.placeholder = ns().Foreground(grey)
	s.count = ns().Foreground(grey)
	s.colHead = ns().Bold(true).Foreground(lipgloss.Color("245"))
	s.selected = ns().Bold(true).Foreground(lipgloss.Color("230")).Background(lipgloss.Color("57"))
	s.locked = ns().Foreground(grey)
	s.lockedSel = ns().Foreground(lipgloss.Color("250")).Background(lipgloss.Color("238"))
	s.rule = ns().Foreground(accent)
	s.label = ns().Foreground(lipgloss.Color("245"))
	s.cmd = ns().Foreground(lipgloss.Color("86"))
	s.dim = ns().Foreground(grey)
	s.status = ns().Foreground(lipgloss.Color("214"))
	s.errText = ns().Bold(true).Foreground(lipgloss.Color("203"))
	s.key = ns().Bold(true).Foreground(lipgloss.Color("252"))
	s.pending = ns().Bold(true).Foreground(lipgloss.Color("214")).Background(accent)
	return s
}

// fit truncates s (plain text) to w cells with an ellipsis and pads it with
// spaces to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if n := w - ansi.StringWidth(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// clip truncates a rendered line (which may hold escape sequences) to w
// cells, so that no line ever wraps in the client's terminal.
func clip(line string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(line) > w {
		return ansi.Truncate(line, w, "")
	}
	return line
}

// row joins cells, each made safe and fitted to its width, with one space
// between: cells hold names, labels and reasons that others wrote.
func row(cells []string, widths []int) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fit(safe(c), widths[i]))
	}
	return b.String()
}
