package tui

import (
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// What the TUI shows follows the bastion by itself. With a Watcher, each
// reported change is noted and, debounceFor later, the pages it touches
// load again: a burst of changes (a bulk grant, a flood of sessions) does
// one load per page. Without a Watcher, or once its channel closed, every
// page that shows something loads again every pollEvery. Either way, at
// most one background load per page is in flight: a change during one
// loads once more after its answer, so no change is left unseen.

const (
	// debounceFor is how long changes gather before the loads they ask.
	debounceFor = 150 * time.Millisecond
	// pollEvery is how often everything loads without a Watcher.
	pollEvery = 5 * time.Second
)

type (
	// changedMsg: the Watcher reported what (closed: its channel closed).
	changedMsg struct {
		what   What
		closed bool
	}
	// debouncedMsg: the gathered changes are due.
	debouncedMsg struct{}
	// pollMsg: a polling round is due.
	pollMsg struct{}
)

// loads numbers the loads of one page, so that a slow answer never
// overwrites a newer one and background loads never stack.
type loads struct {
	// issued numbers the loads; got is the newest applied.
	issued, got int
	// dirty: a change came while a load was in flight; one more load
	// follows its answer.
	dirty bool
}

// next numbers a load that the user asked for: it always goes.
func (l *loads) next() int {
	l.issued++
	return l.issued
}

// background numbers a load that a change or a poll asks for; ok is false
// while one is in flight (which then loads again once answered).
func (l *loads) background() (seq int, ok bool) {
	if l.issued != l.got {
		l.dirty = true
		return 0, false
	}
	return l.next(), true
}

// answered applies the answer to load seq: fresh is false when a newer one
// was applied already, again when a change came during the load.
func (l *loads) answered(seq int) (fresh, again bool) {
	if seq < l.got {
		return false, false
	}
	l.got = seq
	if l.dirty && l.issued == l.got {
		l.dirty = false
		return true, true
	}
	return true, false
}

// live is how the model keeps up.
type live struct {
	changes <-chan What // nil: poll
	due     What        // reported, not loaded yet
	waiting bool        // a debouncedMsg is on its way
}

// awaitChanges waits for the next report of the Watcher's channel.
func awaitChanges(ch <-chan What) tea.Cmd {
	return func() tea.Msg {
		w, ok := <-ch
		return changedMsg{what: w, closed: !ok}
	}
}

func poll() tea.Cmd {
	return tea.Tick(pollEvery, func(time.Time) tea.Msg { return pollMsg{} })
}

// follow is how the model keeps up once started: the Watcher's reports,
// or polling without one.
func (m model) follow() tea.Cmd {
	if m.live.changes != nil {
		return awaitChanges(m.live.changes)
	}
	return poll()
}

// liveUpdate handles the messages of keeping up.
func (m model) liveUpdate(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case changedMsg:
		if msg.closed {
			// The backend can no longer tell: poll, from a fresh load.
			m.live.changes = nil
			return m, tea.Batch(poll(), m.refresh(ChangedAll))
		}
		m.live.due |= msg.what
		next := awaitChanges(m.live.changes)
		if m.live.waiting {
			return m, next
		}
		m.live.waiting = true
		return m, tea.Batch(next, tea.Tick(debounceFor, func(time.Time) tea.Msg { return debouncedMsg{} }))
	case debouncedMsg:
		w := m.live.due
		m.live.due, m.live.waiting = 0, false
		return m, m.refresh(w)
	case pollMsg:
		if m.live.changes != nil {
			return m, nil // a Watcher took over
		}
		return m, tea.Batch(poll(), m.refresh(ChangedAll))
	}
	return m, nil
}

// refresh loads again, in the background, what w names and the screen
// shows: the Resources (the picker is always one key away), the pending
// count, and the sessions while their page is open (it loads when shown).
func (m *model) refresh(w What) tea.Cmd {
	var cmds []tea.Cmd
	if w&ChangedResources != 0 {
		if seq, ok := m.res.background(); ok {
			cmds = append(cmds, m.fetchResources(seq))
		}
	}
	if w&ChangedRequests != 0 {
		if seq, ok := m.queue.background(); ok {
			cmds = append(cmds, m.fetchPending(seq))
		}
	}
	if w&ChangedSessions != 0 && m.page == pageSessions {
		if seq, ok := m.ses.background(); ok {
			cmds = append(cmds, m.fetchSessions(seq))
		}
	}
	return tea.Batch(cmds...)
}

// unlocked are the Resources that were locked in before and are
// reachable in after.
func unlocked(before, after []Item) []Item {
	locked := make(map[string]bool, len(before))
	for _, it := range before {
		if !it.Reachable {
			locked[it.Name] = true
		}
	}
	var out []Item
	for _, it := range after {
		if it.Reachable && locked[it.Name] {
			out = append(out, it)
		}
	}
	return out
}

// resourcesLoaded applies an answer of Resources: a Resource that was
// locked and is reachable now (an approval, a grant) says so, and a
// request form still open for it closes, since enter opens it now.
func (m model) resourcesLoaded(msg resourcesMsg) (tea.Model, tea.Cmd) {
	fresh, more := m.res.answered(msg.seq)
	if !fresh {
		return m, nil
	}
	var again tea.Cmd
	if more {
		again = m.loadResources()
	}
	if msg.err != nil {
		m.setStatus(false, "could not list resources: %v", msg.err)
		m.loaded = true
		return m, again
	}
	opened := unlocked(m.items, msg.items)
	m.setItems(msg.items)
	if len(opened) == 0 {
		return m, again
	}
	names := make([]string, len(opened))
	for i, it := range opened {
		names[i] = it.Name
		delete(m.filed, it.Name)
		if m.form.active && !m.form.busy && m.form.resource == it.Name {
			m.closeForm()
		}
	}
	switch it := opened[0]; {
	case len(opened) > 1:
		m.setStatus(true, "you may reach %s now", strings.Join(names, ", "))
	case it.Kind == "ssh":
		m.setStatus(true, "%s is reachable now: enter opens a shell on it", it.Name)
	default:
		m.setStatus(true, "%s is reachable now: the commands below reach it", it.Name)
	}
	return m, again
}
