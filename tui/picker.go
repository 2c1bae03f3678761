package tui

import (
	"slices"
	"sort"
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
	case tea.KeyRight:
		if l, ok := m.selectedLine(); ok && l.sub < 0 {
			if it := m.items[l.item]; it.Kind == "kube" && it.Reachable && !m.expanded[it.Name] {
				return m, m.expand(it)
			}
		}
		return m, nil
	case tea.KeyLeft:
		if it, ok := m.selected(); ok && m.expanded[it.Name] {
			m.collapse(it.Name)
		}
		return m, nil
	case tea.KeyCtrlL:
		return m.logs()
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
		cmds := []tea.Cmd{m.loadResources()}
		if it, ok := m.selected(); ok && m.expanded[it.Name] {
			cmds = append(cmds, m.expand(it))
		}
		return m, tea.Batch(cmds...)
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
			case "l":
				return m.logs()
			case "n":
				return m.askNamespace()
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

// logs follows the logs of the selected pod (l, ctrl-l while filtering).
func (m model) logs() (tea.Model, tea.Cmd) {
	l, ok := m.selectedLine()
	if r, isRow := m.subRow(l); ok && isRow && r.kind == "pod" {
		return m.toPod(m.items[l.item], r, true)
	}
	m.setStatus(false, "l shows the logs of a pod: expand a kube Resource (enter or →) and select one")
	return m, nil
}

// toPod leaves the TUI for a shell in (or the logs of) the pod r of the
// kube Resource it, stepping up first when the Resource needs it.
func (m model) toPod(it Item, r wrow, logs bool) (tea.Model, tea.Cmd) {
	c := Choice{Pod: PodRef{Resource: it.Name, Namespace: r.ns, Name: r.name}, Logs: logs}
	for name := range m.expanded {
		c.Expanded = append(c.Expanded, name)
	}
	sort.Strings(c.Expanded)
	for name, t := range m.trees {
		if len(t.named) > 0 {
			if c.Named == nil {
				c.Named = map[string][]string{}
			}
			c.Named[name] = append([]string(nil), t.named...)
		}
	}
	if it.StepUp != "" {
		return m.startStepUp(it, c)
	}
	return m.quit(c)
}

// askNamespace asks for a namespace to list under the selected kube
// Resource (n): a user who may not list namespaces names theirs.
func (m model) askNamespace() (tea.Model, tea.Cmd) {
	it, ok := m.selected()
	if !ok || it.Kind != "kube" || !it.Reachable {
		m.setStatus(false, "n names a namespace to list under a kube Resource you may reach: select one")
		return m, nil
	}
	m.ns = nsPrompt{active: true, resource: it.Name, f: field{limit: 63}}
	return m, nil
}

// nsKey edits the namespace; enter lists it, esc cancels.
func (m model) nsKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEsc:
		m.ns = nsPrompt{}
		return m, nil
	case tea.KeyEnter:
		ns, name := strings.TrimSpace(m.ns.f.value), m.ns.resource
		m.ns = nsPrompt{}
		if ns == "" {
			return m, nil
		}
		for _, it := range m.items {
			if it.Name != name {
				continue
			}
			if m.trees == nil {
				m.expanded, m.trees = map[string]bool{}, map[string]*kubeTree{}
			}
			t := m.trees[name]
			if t == nil {
				t = &kubeTree{}
				m.trees[name] = t
			}
			if !slices.Contains(t.named, ns) {
				t.named = append(t.named, ns)
			}
			return m, m.expand(it)
		}
		return m, nil
	}
	m.ns.f.key(k)
	return m, nil
}
