package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// queue is the reviewer's page: the pending requests of others the user
// may decide, and the count in the header.
type queue struct {
	items  []Request
	loaded bool
	err    string // why the last load failed

	cursor, offset int
	loads          // of the pending requests; see live.go

	// deciding is "approve" or "deny" while the reason prompt is open for
	// the request target.
	deciding, target string
	prompt           field
}

type (
	pendingMsg struct {
		seq      int
		requests []Request
		err      error
	}
	decidedMsg struct {
		req     Request
		approve bool
		err     error
	}
)

// loadPending asks the backend for the queue.
func (m *model) loadPending() tea.Cmd {
	return m.fetchPending(m.queue.next())
}

func (m model) fetchPending(seq int) tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return pendingMsg{seq: seq}
		}
		r, err := b.Pending(ctx)
		return pendingMsg{seq: seq, requests: r, err: err}
	}
}

func (m model) decide(r Request, approve bool, reason string) tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return decidedMsg{req: r, approve: approve, err: fmt.Errorf("access requests are not available here")}
		}
		return decidedMsg{req: r, approve: approve, err: b.Decide(ctx, r.ID, approve, reason)}
	}
}

// queueHeight is how many requests fit: the header, the title, the column
// titles and the footer take one line each, the detail pane the rest.
func (m model) queueHeight() int {
	return max(m.height-4-m.detailHeight(), 1)
}

// requestsUpdate handles the messages of the queue.
func (m model) requestsUpdate(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case pendingMsg:
		fresh, more := m.queue.answered(msg.seq)
		if !fresh {
			return m, nil
		}
		var again tea.Cmd
		if more {
			again = m.loadPending()
		}
		if msg.err != nil {
			// The count keeps its last value; the page says why.
			m.queue.err = safe(msg.err.Error())
			return m, again
		}
		m.queue.err, m.queue.loaded = "", true
		m.setQueue(msg.requests)
		return m, again
	case decidedMsg:
		verb, done := "approve", "approved"
		if !msg.approve {
			verb, done = "deny", "denied"
		}
		if msg.err != nil {
			m.setStatus(false, "could not %s: %s", verb, safe(msg.err.Error()))
		} else {
			m.setStatus(true, "%s %s: %s on %s", done, msg.req.ID, msg.req.User, strings.Join(msg.req.Resources, ", "))
		}
		return m, m.loadPending()
	}
	return m, nil
}

// setQueue replaces the requests, oldest first, keeping the selection.
func (m *model) setQueue(rs []Request) {
	q := &m.queue
	prev := ""
	if q.cursor >= 0 && q.cursor < len(q.items) {
		prev = q.items[q.cursor].ID
	}
	q.items = make([]Request, 0, len(rs))
	for _, r := range rs {
		// Requesters write the reasons: never draw them raw.
		r.ID, r.User, r.Reason = safe(r.ID), safe(r.User), safe(r.Reason)
		res := make([]string, len(r.Resources))
		for i, n := range r.Resources {
			res[i] = safe(n)
		}
		r.Resources = res
		q.items = append(q.items, r)
	}
	sort.SliceStable(q.items, func(i, j int) bool { return q.items[i].Created.Before(q.items[j].Created) })
	q.cursor = min(q.cursor, max(len(q.items)-1, 0))
	for i, r := range q.items {
		if r.ID == prev {
			q.cursor = i
		}
	}
	q.offset = keepVisible(q.cursor, q.offset, m.queueHeight(), len(q.items))
}

// toRequests shows the queue and reloads it.
func (m model) toRequests() (tea.Model, tea.Cmd) {
	m.page, m.status = pageRequests, ""
	return m, m.loadPending()
}

func (m model) queueKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	q := &m.queue
	if q.deciding != "" {
		return m.promptKey(k)
	}
	switch k.Type {
	case tea.KeyUp, tea.KeyCtrlP:
		q.cursor--
	case tea.KeyDown, tea.KeyCtrlN:
		q.cursor++
	case tea.KeyPgUp:
		q.cursor -= m.queueHeight()
	case tea.KeyPgDown:
		q.cursor += m.queueHeight()
	case tea.KeyHome:
		q.cursor = 0
	case tea.KeyEnd:
		q.cursor = len(q.items) - 1
	case tea.KeyTab, tea.KeyEsc:
		m.page, m.status = pageResources, ""
		return m, nil
	case tea.KeyCtrlR:
		m.status = ""
		return m, m.loadPending()
	case tea.KeyCtrlY:
		return m.yankRow()
	case tea.KeyRunes:
		switch string(k.Runes) {
		case "q":
			return m.quit(Choice{})
		case "?":
			m.page, m.back = pageHelp, pageRequests
			return m, nil
		case "r":
			m.status = ""
			return m, m.loadPending()
		case "y":
			return m.yankRow()
		case "a", "d":
			if q.cursor >= 0 && q.cursor < len(q.items) {
				q.deciding, q.target = "approve", q.items[q.cursor].ID
				if string(k.Runes) == "d" {
					q.deciding = "deny"
				}
				q.prompt = field{limit: 500}
				m.status = ""
			}
			return m, nil
		}
	}
	q.cursor = min(max(q.cursor, 0), max(len(q.items)-1, 0))
	q.offset = keepVisible(q.cursor, q.offset, m.queueHeight(), len(q.items))
	return m, nil
}

// promptKey edits the optional reason of a decision.
func (m model) promptKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	q := &m.queue
	switch k.Type {
	case tea.KeyEsc:
		q.deciding, q.target = "", ""
		return m, nil
	case tea.KeyEnter:
		var r Request
		for _, it := range q.items {
			if it.ID == q.target {
				r = it
			}
		}
		approve := q.deciding == "approve"
		q.deciding, q.target = "", ""
		if r.ID == "" {
			m.setStatus(false, "that request is no longer pending")
			return m, m.loadPending()
		}
		if approve {
			m.setStatus(true, "approving %s…", r.ID)
		} else {
			m.setStatus(true, "denying %s…", r.ID)
		}
		return m, m.decide(r, approve, strings.TrimSpace(q.prompt.value))
	}
	q.prompt.key(k)
	return m, nil
}

func queueWidths(width int) []int {
	// ID USER RESOURCES REASON AGE, after the 2-cell cursor.
	avail := width - 2 - 4
	id := 16 // whole ids, to type them in `request approve`, when they fit
	if avail < 60 {
		id = max(avail*20/100, 6)
	}
	user := max(avail*11/100, 4)
	res := max(avail*18/100, 6)
	age := 4
	reason := max(avail-id-user-res-age, 0)
	return []int{id, user, res, reason, age}
}

func (m model) queueView() []string {
	st, q := m.st, m.queue
	lines := []string{m.header()}
	switch {
	case q.err != "":
		lines = append(lines, st.errText.Render(fit(" "+q.err, m.width)))
	case !q.loaded:
		lines = append(lines, " Requests to review: …")
	default:
		lines = append(lines, fmt.Sprintf(" Requests to review: %d", len(q.items)))
	}
	widths := queueWidths(m.width)
	lines = append(lines, st.colHead.Render(fit("  "+row([]string{"ID", "USER", "RESOURCES", "REASON", "AGE"}, widths), m.width)))
	rows := m.queueHeight()
	if q.loaded && len(q.items) == 0 {
		lines = append(lines, st.dim.Render(" Nothing to review: no pending request of others that you may decide."))
	}
	now := m.now()
	for i := q.offset; i < len(q.items) && i < q.offset+rows; i++ {
		r := q.items[i]
		cur := "  "
		if i == q.cursor {
			cur = "> "
		}
		text := fit(cur+row([]string{r.ID, r.User, strings.Join(r.Resources, ","), r.Reason, age(r.Created, now)}, widths), m.width)
		if i == q.cursor {
			text = st.selected.Render(text)
		}
		lines = append(lines, text)
	}
	for len(lines) < 3+rows {
		lines = append(lines, "")
	}
	lines = append(lines, m.queueDetail()...)
	if q.deciding != "" {
		p := fmt.Sprintf(" %s %s, reason (optional): ", q.deciding, q.target)
		return append(lines, st.key.Render(p)+st.filter.Render(q.prompt.view(m.width-ansi.StringWidth(p), true)))
	}
	keys := m.keys([]string{"up/down move", "a approve", "d deny", "y command", "r refresh", "tab/esc back"})
	if m.status != "" && !m.statusOK && m.detailHeight() > 0 {
		// The detail pane shows the whole refusal; the keys stay.
		return append(lines, m.st.dim.Render(fit(" "+keys, m.width)))
	}
	return append(lines, m.footer(keys))
}

// queueDetail is the pane under the queue: the whole reason of the
// selected request, or the keys of the open prompt.
func (m model) queueDetail() []string {
	h := m.detailHeight()
	if h == 0 {
		return nil
	}
	st, q := m.st, m.queue
	var r Request
	ok := q.cursor >= 0 && q.cursor < len(q.items)
	if ok {
		r = q.items[q.cursor]
	}
	title := "─"
	if ok {
		title = "─ " + r.ID + " "
	}
	lines := []string{st.rule.Render(title + strings.Repeat("─", max(m.width-ansi.StringWidth(title), 0)))}
	switch {
	case m.status != "" && !m.statusOK:
		// A refusal says why at length: it gets the pane.
		for _, l := range wrap(safe(m.status), m.width-2) {
			lines = append(lines, " "+st.errText.Render(l))
		}
	case ok:
		ttl := "the default TTL"
		if r.TTL > 0 {
			ttl = shortDuration(r.TTL)
		}
		lines = append(lines, " "+st.dim.Render(fmt.Sprintf("%s asks for act on %s for %s · filed %s ago",
			r.User, strings.Join(r.Resources, ", "), ttl, age(r.Created, m.now()))))
		for _, l := range wrap("Reason: "+r.Reason, m.width-2) {
			lines = append(lines, " "+l)
		}
	}
	last := ""
	if q.deciding != "" {
		last = " " + st.status.Render(fmt.Sprintf("enter: %s %s · esc: cancel", q.deciding, q.target))
	}
	if len(lines) > h-1 {
		lines = lines[:h-1]
	}
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	return append(lines, last)
}

// age is how long ago t was, e.g. "45s", "12m", "3h", "2d".
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// shortDuration is d without zero units: "30m", "1h", "2h30m".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
