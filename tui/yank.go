package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// yank is what y (ctrl-y while filtering) shows: the exact command that
// reaches the selected row, alone on its lines at the bottom of the
// screen, where a mouse selection takes nothing else. The next key hides
// it; esc does nothing more.
type yank struct {
	what string // the row: a Resource, a session or request id
	cmd  string
}

// yankRow picks the command of the page's selected row.
func (m model) yankRow() (tea.Model, tea.Cmd) {
	host := m.hostOr()
	var y yank
	switch m.page {
	case pageResources:
		if r, ok := m.subRow(m.lineAt(m.cursor)); ok {
			it, _ := m.selected()
			_, hows := workloadLines(m.host, it.Name, r)
			for _, hw := range hows {
				if hw.cmd != "" {
					y = yank{what: r.kind + " " + r.ns + "/" + r.name, cmd: hw.cmd}
					break
				}
			}
		} else if it, ok := m.selected(); ok {
			for _, hw := range connectLines(m.host, it) {
				if hw.cmd != "" {
					y = yank{what: it.Name, cmd: hw.cmd}
					break
				}
			}
		}
	case pageSessions:
		if m.scursor >= 0 && m.scursor < len(m.sessions) {
			id := m.sessions[m.scursor].ID
			y = yank{what: "session " + id, cmd: host + " sessions kill " + id}
		}
	case pageRequests:
		if q := m.queue; q.cursor >= 0 && q.cursor < len(q.items) {
			id := q.items[q.cursor].ID
			y = yank{what: "request " + id, cmd: host + " request approve " + id}
		}
	}
	if y.cmd == "" {
		m.setStatus(false, "nothing is selected")
		return m, nil
	}
	// Names and ids come from others: never drawn raw.
	y.what, y.cmd = safe(y.what), safe(y.cmd)
	m.yank, m.status = y, ""
	return m, nil
}

// yankLines are the lines that show the command: a title, then the
// command from the first column, broken at the width only when it is
// wider (no frame, no margin: a selection copies it as it is).
func (m model) yankLines() []string {
	if m.yank.cmd == "" {
		return nil
	}
	title := m.st.dim.Render(fit(" The command for "+m.yank.what+", to copy (any key hides it):", m.width))
	cmd := strings.Split(ansi.Hardwrap(m.yank.cmd, max(m.width, 1), true), "\n")
	return append([]string{title}, cmd...)
}

// withYank puts the shown command over the last lines of a page.
func (m model) withYank(lines []string) []string {
	y := m.yankLines()
	if len(y) == 0 {
		return lines
	}
	keep := max(len(lines)-len(y), 1) // the header stays
	return append(lines[:keep:keep], y...)
}
