package tui

import (
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// defaultTTL is what the request form proposes.
const defaultTTL = "1h"

// reqForm is the form that files an access request for a locked Resource.
type reqForm struct {
	active   bool
	resource string
	project  string
	reason   field
	ttl      field
	focus    int // 0: reason, 1: TTL

	// errReason and errTTL are the fields' own errors; err is the
	// backend's refusal, which says why.
	errReason, errTTL, err string
	busy                   bool // submitted, waiting for the backend
}

// requestedMsg is the backend's answer to a filed request.
type requestedMsg struct {
	resource, id string
	err          error
}

func (m model) enter() (tea.Model, tea.Cmd) {
	l, ok := m.selectedLine()
	if !ok {
		return m, nil
	}
	it := m.items[l.item]
	if r, ok := m.subRow(l); ok {
		switch r.kind {
		case "pod":
			return m.toPod(it, r, false)
		case "svc":
			m.setStatus(true, "%s is a Service: the forward command below reaches it", r.name)
		}
		return m, nil
	}
	switch {
	case !it.Reachable:
		m.form = reqForm{active: true, resource: it.Name, project: it.Project,
			reason: field{limit: 500}, ttl: field{value: defaultTTL, limit: 20}}
		return m, nil
	case it.StepUp != "":
		return m.startStepUp(it, Choice{})
	case it.Kind == "ssh":
		return m.quit(Choice{Open: it.Name})
	case it.Kind == "kube":
		if m.expanded[it.Name] {
			m.collapse(it.Name)
			return m, nil
		}
		return m, m.expand(it)
	default:
		m.setStatus(true, "%s is a %s resource: use the forward command below", it.Name, it.Kind)
		return m, nil
	}
}

func (m model) hostOr() string {
	if m.host == "" {
		return "ssh bastion"
	}
	return m.host
}

// closeForm leaves the form for the whole list, the Resource still
// selected (esc on the list clears the filter the same way).
func (m *model) closeForm() {
	m.form = reqForm{}
	if m.filter != "" {
		m.filter = ""
		m.refilter()
	}
}

// validate checks the fields and returns the TTL; it sets the fields'
// errors and moves the focus to the first wrong one.
func (f *reqForm) validate() (time.Duration, bool) {
	f.errReason, f.errTTL = "", ""
	if strings.TrimSpace(f.reason.value) == "" {
		f.errReason = "a reason is required: reviewers decide on it (e.g. INC-7: restart the API)"
	}
	ttl, err := time.ParseDuration(strings.TrimSpace(f.ttl.value))
	switch {
	case strings.TrimSpace(f.ttl.value) == "":
		f.errTTL = "a TTL is required, e.g. 30m, 1h or 2h30m"
	case err != nil:
		f.errTTL = fmt.Sprintf("%q is not a duration: use e.g. 30m, 1h or 2h30m", strings.TrimSpace(f.ttl.value))
	case ttl <= 0:
		f.errTTL = "the TTL must be more than zero"
	}
	switch {
	case f.errReason != "":
		f.focus = 0
	case f.errTTL != "":
		f.focus = 1
	default:
		return ttl, true
	}
	return 0, false
}

func (m model) formKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	f := &m.form
	switch k.Type {
	case tea.KeyEsc:
		m.closeForm()
		m.setStatus(true, "no request filed for %s", f.resource)
		return m, nil
	case tea.KeyTab, tea.KeyDown, tea.KeyShiftTab, tea.KeyUp:
		f.focus = 1 - f.focus
		return m, nil
	case tea.KeyEnter:
		if f.busy {
			return m, nil
		}
		if f.focus == 0 {
			if strings.TrimSpace(f.reason.value) == "" {
				f.errReason = "a reason is required: reviewers decide on it (e.g. INC-7: restart the API)"
				return m, nil
			}
			f.errReason, f.focus = "", 1
			return m, nil
		}
		ttl, ok := f.validate()
		if !ok {
			return m, nil
		}
		f.busy, f.err = true, ""
		return m, m.requestAccess(f.resource, strings.TrimSpace(f.reason.value), ttl)
	}
	if f.busy {
		return m, nil
	}
	fl, e := &f.reason, &f.errReason
	if f.focus == 1 {
		fl, e = &f.ttl, &f.errTTL
	}
	if fl.key(k) {
		*e, f.err = "", ""
	}
	return m, nil
}

func (m model) requestAccess(resource, reason string, ttl time.Duration) tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return requestedMsg{resource: resource, err: fmt.Errorf("access requests are not available here")}
		}
		id, err := b.RequestAccess(ctx, resource, reason, ttl)
		return requestedMsg{resource: resource, id: id, err: err}
	}
}

func (m model) requested(msg requestedMsg) (tea.Model, tea.Cmd) {
	open := m.form.active && m.form.resource == msg.resource
	if msg.err != nil {
		if open {
			// The form stays, so that the user keeps what they typed.
			m.form.busy, m.form.err = false, safe(msg.err.Error())
		} else {
			m.setStatus(false, "request for %s refused: %s", msg.resource, safe(msg.err.Error()))
		}
		return m, nil
	}
	if open {
		m.closeForm()
	}
	if m.filed == nil {
		m.filed = map[string]string{}
	}
	m.filed[msg.resource] = msg.id
	m.setStatus(true, "request %s filed for %s; a reviewer must approve it", safe(msg.id), msg.resource)
	return m, nil
}

func (m model) formView() []string {
	st, f := m.st, m.form
	name := safe(f.resource)
	lines := []string{m.header(), ""}
	lines = append(lines, " "+st.errText.Render(name+" is locked")+": request access to it")
	who := "A reviewer"
	if f.project != "" {
		who = "A reviewer of project " + safe(f.project)
	}
	for _, l := range wrap(who+" must approve it; then "+name+" unlocks here for the TTL (the bastion may cap it).", m.width-2) {
		lines = append(lines, " "+st.dim.Render(l))
	}
	lines = append(lines, "")
	in := max(m.width-13, 2)
	row := func(i int, label string, fl field, placeholder, e string) {
		cur := "   "
		if f.focus == i {
			cur = " > "
		}
		v := fl.view(in, f.focus == i)
		if fl.value == "" && f.focus != i {
			v = st.placeholder.Render(fit(placeholder, in))
		} else {
			v = st.filter.Render(v)
		}
		lines = append(lines, cur+st.key.Render(fit(label, 8))+"  "+v)
		if e != "" {
			for _, l := range wrap(e, m.width-13) {
				lines = append(lines, strings.Repeat(" ", 13)+st.errText.Render(l))
			}
		}
	}
	row(0, "Reason", f.reason, "why you need access, e.g. INC-7", f.errReason)
	row(1, "TTL", f.ttl, "how long, e.g. 30m or 2h", f.errTTL)
	lines = append(lines, "")
	switch {
	case f.busy:
		lines = append(lines, " "+st.status.Render("filing the request…"))
	case f.err != "":
		for _, l := range wrap(f.err, m.width-2) {
			lines = append(lines, " "+st.errText.Render(l))
		}
	}
	if len(lines) > m.height-1 {
		lines = lines[:max(m.height-1, 1)] // the keys always show
	}
	for len(lines) < m.height-1 {
		lines = append(lines, "")
	}
	return append(lines, st.dim.Render(fit(" enter next / file the request · tab move · esc cancel", m.width)))
}

// wrap breaks plain text into lines of at most w cells, at spaces.
func wrap(s string, w int) []string {
	if w < 10 {
		w = 10
	}
	var out []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case ansi.StringWidth(line)+1+ansi.StringWidth(word) <= w:
			line += " " + word
		default:
			out = append(out, line)
			line = word
		}
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}
