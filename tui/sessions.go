package tui

import (
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// sessionsHeight is how many sessions fit: the header, the title, the
// column titles and the footer take one line each, the detail pane the
// rest.
func (m model) sessionsHeight() int {
	return max(m.height-4-m.detailHeight(), 1)
}

func (m model) sessionsKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyUp, tea.KeyCtrlP:
		m.scursor--
	case tea.KeyDown, tea.KeyCtrlN:
		m.scursor++
	case tea.KeyPgUp:
		m.scursor -= m.sessionsHeight()
	case tea.KeyPgDown:
		m.scursor += m.sessionsHeight()
	case tea.KeyHome:
		m.scursor = 0
	case tea.KeyEnd:
		m.scursor = len(m.sessions) - 1
	case tea.KeyTab, tea.KeyEsc:
		m.page, m.status = pageResources, ""
		return m, nil
	case tea.KeyCtrlR:
		m.status = ""
		return m, m.loadSessions()
	case tea.KeyCtrlY:
		return m.yankRow()
	case tea.KeyRunes:
		switch string(k.Runes) {
		case "q":
			return m.quit(Choice{})
		case "?":
			m.page, m.back = pageHelp, pageSessions
			return m, nil
		case "r":
			m.status = ""
			return m, m.loadSessions()
		case "y":
			return m.yankRow()
		case "k", "x":
			if m.scursor >= 0 && m.scursor < len(m.sessions) {
				id := m.sessions[m.scursor].ID
				m.setStatus(true, "ending session %s…", id)
				return m, m.kill(id)
			}
		}
	}
	m.scursor = min(max(m.scursor, 0), max(len(m.sessions)-1, 0))
	m.scroll()
	return m, nil
}

var sessionTitles = []string{"ID", "KIND", "RESOURCE", "TARGET", "TTL LEFT", "IN/OUT"}

// sessionCells are the cells of one session's row, made safe.
func sessionCells(s Session, now time.Time) []string {
	return []string{safe(s.ID), safe(s.Kind), safe(s.Resource), safe(s.Target), ttlLeft(s.Expires, now),
		humanBytes(s.BytesIn) + " / " + humanBytes(s.BytesOut)}
}

// sessionWidths size the columns to their content: ids and kinds are
// always whole (they are typed into `sessions kill`), and so are the TTL
// and byte counts; the resource and the target share what is left, cut
// only when both do not fit. On a terminal too narrow even for the whole
// ids, the row runs past the right edge rather than cutting them.
func sessionWidths(width int, rows [][]string) []int {
	w := make([]int, len(sessionTitles))
	for i, t := range sessionTitles {
		w[i] = ansi.StringWidth(t)
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], ansi.StringWidth(c))
		}
	}
	// After the 2-cell cursor and the 5 spaces between the columns.
	rest := width - 2 - 5 - w[0] - w[1] - w[4] - w[5]
	if res, target := w[2], w[3]; res+target > rest {
		w[2] = max(rest*res/(res+target), min(res, 8))
		w[3] = max(rest-w[2], min(target, 8))
	}
	return w
}

func (m model) sessionsView() []string {
	st := m.st
	lines := []string{m.header()}
	title := fmt.Sprintf(" Your live sessions: %d", len(m.sessions))
	lines = append(lines, title)
	now := m.now()
	cells := make([][]string, len(m.sessions))
	for i, s := range m.sessions {
		cells[i] = sessionCells(s, now)
	}
	widths := sessionWidths(m.width, cells)
	// The rows are made safe already: row would escape the escapes.
	line := func(c []string) string {
		parts := make([]string, len(c))
		for i, s := range c {
			parts[i] = fit(s, widths[i])
		}
		return strings.Join(parts, " ")
	}
	lines = append(lines, st.colHead.Render(fit("  "+line(sessionTitles), m.width)))
	rows := m.sessionsHeight()
	if len(m.sessions) == 0 {
		lines = append(lines, st.dim.Render(" You have no live session."))
	}
	for i := m.soffset; i < len(m.sessions) && i < m.soffset+rows; i++ {
		cur := "  "
		if i == m.scursor {
			cur = "> "
		}
		// fit pads to the width; a row wider than it keeps its ids whole
		// and the view clips what is past the edge.
		text := cur + line(cells[i])
		if ansi.StringWidth(text) < m.width {
			text = fit(text, m.width)
		}
		if i == m.scursor {
			text = st.selected.Render(text)
		}
		lines = append(lines, text)
	}
	for len(lines) < 3+rows {
		lines = append(lines, "")
	}
	lines = append(lines, m.sessionDetail()...)
	return append(lines, m.footer(m.keys([]string{"up/down move", "k/x end session", "y command", "r/ctrl-r refresh", "tab/esc back"})))
}

// sessionDetail is the pane under the sessions: the selected one whole,
// and the command that ends it.
func (m model) sessionDetail() []string {
	h := m.detailHeight()
	if h == 0 {
		return nil
	}
	st := m.st
	ok := m.scursor >= 0 && m.scursor < len(m.sessions)
	title := "─"
	var s Session
	if ok {
		s = m.sessions[m.scursor]
		title = "─ " + safe(s.ID) + " "
	}
	lines := []string{st.rule.Render(title + strings.Repeat("─", max(m.width-ansi.StringWidth(title), 0)))}
	if ok {
		info := safe(s.Kind) + " on " + safe(s.Resource)
		if s.Target != "" {
			info += " as " + safe(s.Target)
		}
		if !s.Opened.IsZero() {
			info += " · opened " + s.Opened.Local().Format("15:04:05")
		}
		switch t := ttlLeft(s.Expires, m.now()); t {
		case "-":
		case "expired":
			info += " · expired"
		default:
			info += " · " + t + " left"
		}
		for _, l := range wrap(info, m.width-2) {
			lines = append(lines, " "+st.dim.Render(l))
		}
		lines = append(lines, " "+st.label.Render(fit("End", 8))+" "+st.cmd.Render(m.hostOr()+" sessions kill "+safe(s.ID)))
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}

// ttlLeft is how long until expires, e.g. "1h02m", "12m03s", "expired".
func ttlLeft(expires, now time.Time) string {
	if expires.IsZero() {
		return "-"
	}
	d := expires.Sub(now).Truncate(time.Second)
	switch {
	case d <= 0:
		return "expired"
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

// humanBytes is a short byte count: 512B, 1.5K, 3.2M, 1.0G.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	f := float64(n)
	for _, u := range []string{"K", "M", "G", "T"} {
		f /= 1024
		if f < 1024 || u == "T" {
			return fmt.Sprintf("%.1f%s", f, u)
		}
	}
	return "" // unreachable
}
