package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// detailHeight is how many lines the detail pane takes, its rule included.
func (m model) detailHeight() int {
	switch {
	case m.height >= 30:
		return 8 // room for a step-up's need and a workload's error
	case m.height >= 16:
		return 6
	case m.height >= 10:
		return 4
	}
	return 0
}

// listHeight is how many Resources fit on screen: the header, the filter
// line, the column titles and the footer take one line each.
func (m model) listHeight() int {
	return max(m.height-4-m.detailHeight(), 1)
}

func (m model) View() string {
	if m.quitting {
		if m.choice.Open != "" {
			return "bastion: opening " + safe(m.choice.Open) + " …\n"
		}
		return "bastion: bye\n"
	}
	var lines []string
	switch m.page {
	case pageSessions:
		lines = m.sessionsView()
	case pageRequests:
		lines = m.queueView()
	case pageHelp:
		lines = m.helpView()
	default:
		if m.form.active {
			lines = m.formView()
		} else if m.stepUp.active {
			lines = m.stepUpView()
		} else {
			lines = m.resourcesView()
		}
	}
	lines = m.withYank(lines)
	if len(lines) > m.height {
		lines = lines[:m.height]
	}
	for i, l := range lines {
		lines[i] = clip(l, m.width)
	}
	return strings.Join(lines, "\n")
}

// header is the top bar: the bastion, the user, how many requests wait
// for their review, and the pages.
func (m model) header() string {
	st := m.st
	left := st.header.Render(" bastion ")
	if m.user != "" {
		left += st.headerDim.Render(" " + safe(m.user) + " ")
	}
	if n := len(m.queue.items); n > 0 {
		left += st.pending.Render(fmt.Sprintf(" %d pending ", n))
	}
	var tabs string
	for _, t := range []struct {
		name string
		p    page
	}{{"Resources", pageResources}, {"Sessions", pageSessions}, {"Requests", pageRequests}, {"Help", pageHelp}} {
		if t.p == m.page {
			tabs += st.tabOn.Render("[" + t.name + "]")
		} else {
			tabs += st.tab.Render(" " + t.name + " ")
		}
	}
	tabs += st.tab.Render(" ")
	gap := m.width - ansi.StringWidth(left) - ansi.StringWidth(tabs)
	if gap < 1 {
		return left + st.headerDim.Render(strings.Repeat(" ", max(m.width-ansi.StringWidth(left), 0)))
	}
	return left + st.headerDim.Render(strings.Repeat(" ", gap)) + tabs
}

// footer is the status line when there is one, or the keys. Statuses
// quote names and the backend's errors: they are drawn made safe.
func (m model) footer(keys string) string {
	switch {
	case m.status != "" && m.statusOK:
		return m.st.status.Render(fit(" "+safe(m.status), m.width))
	case m.status != "":
		return m.st.errText.Render(fit(" "+safe(m.status), m.width))
	}
	return m.st.dim.Render(fit(" "+keys, m.width))
}

// keys are the key hints of a footer, as many of hints as fit the width,
// most useful first; "? help" and "q quit" always show.
func (m model) keys(hints []string) string {
	tail := []string{"? help", "q quit"}
	for n := len(hints); n > 0; n-- {
		if s := strings.Join(append(hints[:n:n], tail...), " · "); 1+ansi.StringWidth(s) <= m.width {
			return s
		}
	}
	return strings.Join(tail, " · ")
}

// resourceWidths are the widths of NAME, KIND, PROJECT and LABELS after the
// 5-cell prefix (cursor and lock).
func resourceWidths(width int) []int {
	avail := width - 5 - 3
	name := max(avail*30/100, 8)
	project := max(avail*20/100, 6)
	kind := 4
	labels := max(avail-name-project-kind, 0)
	return []int{name, kind, project, labels}
}

func (m model) resourcesView() []string {
	st := m.st
	lines := []string{m.header()}

	count := fmt.Sprintf("%d of %d ", m.shownResources(), len(m.items))
	var f string
	if m.filter == "" {
		f = " Filter: " + st.placeholder.Render("type to filter by name, kind, project or label")
	} else {
		f = " Filter: " + st.filter.Render(safe(m.filter)+"_")
	}
	if m.ns.active {
		f = " Namespace to list in " + safe(m.ns.resource) + ": " + st.filter.Render(m.ns.f.view(max(m.width-40-ansi.StringWidth(m.ns.resource), 4), true)) +
			st.dim.Render("  enter lists it · esc cancels")
	}
	if gap := m.width - ansi.StringWidth(f) - len(count); gap > 0 {
		f += strings.Repeat(" ", gap) + st.count.Render(count)
	}
	lines = append(lines, f)

	widths := resourceWidths(m.width)
	lines = append(lines, st.colHead.Render(fit("     "+row([]string{"NAME", "KIND", "PROJECT", "LABELS"}, widths), m.width)))

	rows := m.listHeight()
	switch {
	case !m.loaded:
		lines = append(lines, st.dim.Render(" loading…"))
	case len(m.items) == 0:
		lines = append(lines, st.dim.Render(" There is no Resource you may see yet."))
	case len(m.shown) == 0:
		lines = append(lines, st.dim.Render(fmt.Sprintf(" Nothing matches %q. esc clears the filter.", m.filter)))
	}
	for i := m.offset; i < len(m.shown) && i < m.offset+rows; i++ {
		it := m.items[m.shown[i].item]
		cur, lock := "  ", "  "
		if i == m.cursor {
			cur = "> "
		}
		if r, ok := m.subRow(m.shown[i]); ok {
			text := fit(cur+"   "+row(workloadCells(r), widths), m.width)
			if r.kind == "note" {
				// A note (an error) spans the row: it says why.
				text = fit(cur+"     "+safe(r.status), m.width)
			}
			switch {
			case i == m.cursor:
				text = st.selected.Render(text)
			case r.err:
				text = st.errText.Render(text)
			case r.kind == "note" || r.kind == "ns":
				text = st.dim.Render(text)
			}
			lines = append(lines, text)
			continue
		}
		switch {
		case !it.Reachable:
			lock = st.lock
		case it.StepUp != "":
			lock = st.stepUp
		}
		text := fit(cur+lock+" "+row([]string{it.Name, it.Kind, it.Project, labelString(it.Labels)}, widths), m.width)
		switch {
		case i == m.cursor && !it.Reachable:
			text = st.lockedSel.Render(text)
		case i == m.cursor:
			text = st.selected.Render(text)
		case !it.Reachable:
			text = st.locked.Render(text)
		}
		lines = append(lines, text)
	}
	for len(lines) < 3+rows {
		lines = append(lines, "")
	}
	lines = append(lines, m.detailView()...)
	hints := []string{"enter open", "y command", "ctrl-r refresh", "tab sessions", "r requests", "type to filter"}
	if r, ok := m.subRow(m.lineAt(m.cursor)); ok && r.kind == "pod" {
		hints = []string{"enter shell", "l logs", "y command", "← collapse", "ctrl-r refresh", "tab sessions"}
	}
	if m.filter != "" {
		hints = []string{"enter open", "ctrl-y command", "ctrl-r refresh", "esc clear", "tab sessions"}
	}
	return append(lines, m.footer(m.keys(hints)))
}

// detailView is the pane under the list: what the selected Resource is and
// the exact commands that reach it.
func (m model) detailView() []string {
	h := m.detailHeight()
	if h == 0 {
		return nil
	}
	st := m.st
	it, ok := m.selected()
	title := "─"
	if ok {
		title = "─ " + safe(it.Name) + " "
	}
	if r, isRow := m.subRow(m.lineAt(m.cursor)); ok && isRow {
		return m.workloadDetail(it, r, h)
	}
	lines := []string{st.rule.Render(title + strings.Repeat("─", max(m.width-ansi.StringWidth(title), 0)))}
	if ok {
		info := []string{it.Kind}
		if it.Project != "" {
			info = append(info, "project "+it.Project)
		}
		if it.Address != "" {
			info = append(info, it.Address)
		}
		if l := labelString(it.Labels); l != "" {
			info = append(info, l)
		}
		if !it.Reachable {
			info = append(info, "locked")
		}
		lines = append(lines, " "+st.dim.Render(safe(strings.Join(info, " · "))))
		if it.Reachable && it.StepUp != "" {
			// What satisfies it, before the commands that need it.
			for _, l := range wrap("Needs a step-up: "+it.StepUp+". Press enter to step up here, or run `"+m.hostOr()+" step-up`.", m.width-2) {
				lines = append(lines, " "+st.status.Render(safe(l)))
			}
		}
		for _, hw := range connectLines(m.host, it) {
			// The commands and sentences quote the Resource's name.
			hw.text, hw.cmd = safe(hw.text), safe(hw.cmd)
			if id := m.filed[it.Name]; id != "" && hw.cmd == "" && !it.Reachable {
				// Filed here: it unlocks by itself once approved.
				hw.text = fmt.Sprintf("Request %s is pending: %s unlocks here once approved.", safe(id), safe(it.Name))
			}
			switch {
			case hw.cmd == "" && !it.Reachable:
				lines = append(lines, " "+st.status.Render(hw.text))
			case hw.cmd == "":
				lines = append(lines, " "+st.dim.Render(hw.text))
			default:
				lines = append(lines, " "+st.label.Render(fit(hw.label, 8))+" "+st.cmd.Render(hw.cmd))
			}
		}
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}

func (m model) helpView() []string {
	st := m.st
	k := func(keys, what string) string { return "  " + st.key.Render(fit(keys, 20)) + " " + what }
	return []string{
		m.header(),
		"",
		" Resources",
		k("type", "filter by name, kind, project or label"),
		k("backspace / esc", "edit / clear the filter (ctrl-u clears, ctrl-w a word)"),
		k("up/down ctrl-p/n", "move (pgup, pgdown, home, end)"),
		k("enter", "open a shell on an ssh Resource; locked: request access"),
		k("enter / → ←", "kube: show / hide its namespaces, pods and services"),
		k("enter, l", "on a pod: a shell in it; its logs, following (ctrl-l filtering)"),
		k("n", "kube: name a namespace to list (if you may not list namespaces)"),
		k("", "a key mark: needs a step-up; enter logs in again first"),
		k("y", "print the row's command, to copy; ctrl-y while filtering"),
		k("ctrl-r", "reload now; the pages also follow changes by themselves"),
		k("tab, s / r", "Sessions / Requests to review (s, r: empty filter)"),
		"",
		" Sessions",
		k("up/down ctrl-p/n", "move"),
		k("k, x", "end the selected session"),
		k("r, ctrl-r", "refresh"),
		k("tab, esc", "back to the Resources"),
		"",
		" Requests to review",
		k("a, d", "approve, deny the selected one (asks an optional reason)"),
		k("r, ctrl-r", "refresh; the header counts what is pending"),
		"",
		k("?", "this help; esc goes back"),
		k("q, ctrl-c", "quit (q only when the filter is empty)"),
	}
}

// lineAt is row i of the list (a zero line when there is none).
func (m model) lineAt(i int) line {
	if i < 0 || i >= len(m.shown) {
		return line{sub: -1}
	}
	return m.shown[i]
}

// workloadDetail is the detail pane of a workload row: what it is, and
// the exact ssh -L that reaches it. Errors are wrapped over the pane.
func (m model) workloadDetail(it Item, r wrow, h int) []string {
	st := m.st
	path := it.Name
	if r.ns != "" {
		path += " / " + r.ns
	}
	if r.name != "" {
		path += " / " + r.name
	}
	title := "─ " + safe(path) + " "
	lines := []string{st.rule.Render(title + strings.Repeat("─", max(m.width-ansi.StringWidth(title), 0)))}
	info, hows := workloadLines(m.host, it.Name, r)
	style := st.dim
	if r.err {
		style = st.errText
	}
	for _, l := range wrap(info, m.width-2) {
		lines = append(lines, " "+style.Render(safe(l)))
	}
	for _, hw := range hows {
		if hw.cmd == "" {
			lines = append(lines, " "+st.dim.Render(safe(hw.text)))
			continue
		}
		lines = append(lines, " "+st.label.Render(fit(hw.label, 8))+" "+st.cmd.Render(safe(hw.cmd)))
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}

// shownResources counts the Resources shown (not their workloads).
func (m model) shownResources() int {
	n := 0
	for _, l := range m.shown {
		if l.sub < 0 {
			n++
		}
	}
	return n
}
