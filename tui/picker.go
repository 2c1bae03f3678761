package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// resourcesKey handles the keys of the picker: moving, filtering, enter,
// and the keys of the other pages while the filter is empty.
func (m model) resourcesKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	m.status = ""
	switch k.Type {
	case tea.KeyUp, tea.KeyCtrlP:
		m.cursor--
	case tea.KeyDown, tea.KeyCtrlN:
		m.cursor++
	case tea.KeyPgUp:
		m.cursor -= m.listHeight()
	case tea.KeyPgDown:
		m.cursor += m.listHeight()
	case tea.KeyHome:
		m.cursor = 0
	case tea.KeyEnd:
		m.cursor = len(m.shown) - 1
	case tea.KeyTab:
		return m.toSessions()
	case tea.KeyEsc:
		if m.filter != "" {
			m.filter = ""
			m.refilter()
		}
		return m, nil
	case tea.KeyBackspace, tea.KeyCtrlH:
		if r := []rune(m.filter); len(r) > 0 {
			m.filter = string(r[:len(r)-1])
			m.refilter()
		}
		return m, nil
	case tea.KeyCtrlU:
		m.filter = ""
		m.refilter()
		return m, nil
	case tea.KeyCtrlW:
		f := strings.TrimRight(m.filter, " ")
		if i := strings.LastIndexByte(f, ' '); i >= 0 {
			m.filter = f[:i+1]
		} else {
			m.filter = ""
		}
		m.refilter()
		return m, nil
	case tea.KeyCtrlR:
		return m, m.loadResources()
	case tea.KeyCtrlY:
		return m.yankRow()
	case tea.KeyEnter:
		return m.enter()
	case tea.KeySpace:
		if m.filter != "" {
			m.filter += " "
			m.refilter()
		}
		return m, nil
	case tea.KeyRunes:
		if k.Alt {
			return m, nil
		}
		s := string(k.Runes)
		if m.filter == "" && !k.Paste {
			switch s {
			case "q":
				return m.quit(Choice{})
			case "s":
				return m.toSessions()
			case "r":
				return m.toRequests()
			case "y":
				return m.yankRow()
			}
		}
		if s == "?" && !k.Paste {
			m.page, m.back = pageHelp, pageResources
			return m, nil
		}
		s = strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return -1
			}
			return r
		}, s)
		m.filter += s
		m.refilter()
		return m, nil
	}
	m.cursor = min(max(m.cursor, 0), max(len(m.shown)-1, 0))
	m.scroll()
	return m, nil
}
