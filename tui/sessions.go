package tui

import (
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// sessionsHeight is how many sessions fit: the header, the title, the
// column titles and the footer take one line each.
func (m model) sessionsHeight() int {
	return max(m.height-4, 1)
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

func sessionWidths(width int) []int {
	// ID KIND RESOURCE TARGET TTL IN/OUT, after the 2-cell cursor.
	avail := width - 2 - 5
	id := max(avail*14/100, 6)
	kind := 4
	res := max(avail*22/100, 6)
	target := max(avail*22/100, 6)
	ttl := 8
	io := max(avail-id-kind-res-target-ttl, 0)
	return []int{id, kind, res, target, ttl, io}
}

func (m model) sessionsView() []string {
	st := m.st
	lines := []string{m.header()}
	title := fmt.Sprintf(" Your live sessions: %d", len(m.sessions))
	lines = append(lines, title)
	widths := sessionWidths(m.width)
	lines = append(lines, st.colHead.Render(fit("  "+row([]string{"ID", "KIND", "RESOURCE", "TARGET", "TTL LEFT", "IN/OUT"}, widths), m.width)))
	rows := m.sessionsHeight()
	if len(m.sessions) == 0 {
		lines = append(lines, st.dim.Render(" You have no live session."))
	}
	now := m.now()
	for i := m.soffset; i < len(m.sessions) && i < m.soffset+rows; i++ {
		s := m.sessions[i]
		cur := "  "
		if i == m.scursor {
			cur = "> "
		}
		text := fit(cur+row([]string{
			s.ID, s.Kind, s.Resource, s.Target,
			ttlLeft(s.Expires, now),
			humanBytes(s.BytesIn) + " / " + humanBytes(s.BytesOut),
		}, widths), m.width)
		if i == m.scursor {
			text = st.selected.Render(text)
		}
		lines = append(lines, text)
	}
	for len(lines) < 3+rows {
		lines = append(lines, "")
	}
	return append(lines, m.footer("up/down move · k/x end session · r refresh · tab/esc back · ? help · q quit"))
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
