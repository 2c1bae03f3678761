package tui

import tea "github.com/charmbracelet/bubbletea"

// The pending count follows the backend's reports when it is a
// PendingWatcher, and polls (pollEvery) when it is not or its channel
// closed.

// pendingChangedMsg: the backend reported a change (closed: its channel
// closed).
type pendingChangedMsg struct{ closed bool }

// awaitChange waits for the next report of the PendingWatcher's channel.
func awaitChange(ch <-chan struct{}) tea.Cmd {
	return func() tea.Msg {
		_, ok := <-ch
		return pendingChangedMsg{closed: !ok}
	}
}

// follow is how the count keeps up once loaded: the watcher's reports, or
// polling without one.
func (m model) follow() tea.Cmd {
	if m.queue.changes != nil {
		return awaitChange(m.queue.changes)
	}
	return poll()
}

// pendingChanged loads the count again after a reported change.
func (m model) pendingChanged(msg pendingChangedMsg) (tea.Model, tea.Cmd) {
	if msg.closed {
		m.queue.changes = nil
		return m, tea.Batch(poll(), m.loadPending())
	}
	next := awaitChange(m.queue.changes)
	// At most one load in flight: a change during one loads again
	// once it is answered.
	if m.queue.issued != m.queue.got {
		m.queue.dirty = true
		return m, next
	}
	return m, tea.Batch(next, m.loadPending())
}
