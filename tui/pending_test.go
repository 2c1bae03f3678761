package tui

import (
	"context"
	"strings"
	"testing"
	"time"
)

// watchingBackend reports pending changes on a channel the test drives.
type watchingBackend struct {
	*fakeBackend
	changes chan struct{}
}

func (w watchingBackend) PendingChanges(context.Context) <-chan struct{} { return w.changes }

// With a PendingWatcher the count follows its reports, one load at a
// time, without polling; when its channel closes, polling takes over.
func TestPendingCountFollowsChanges(t *testing.T) {
	b := watchingBackend{fakeBackend: queueBackend(), changes: make(chan struct{}, 1)}
	m := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: 80, Height: 24, User: "bob", Backend: b})
	if m.queue.changes == nil {
		t.Fatal("the model does not follow the backend's changes")
	}
	m, _ = do(t, m, m.fetchPending(0))
	if !strings.Contains(m.header(), "2 pending") {
		t.Fatalf("header %q lacks 2 pending", m.header())
	}
	// A new request elsewhere: the backend reports it, the model loads.
	b.mu.Lock()
	b.pending = append(b.pending, Request{ID: "r-3", User: "dave", Resources: []string{"db-1"}, Reason: "x", Created: time.Now()})
	b.mu.Unlock()
	b.changes <- struct{}{}
	msg := awaitChange(b.changes)()
	nm, cmd := m.Update(msg)
	m = nm.(model)
	if m.queue.issued != m.queue.got+1 || cmd == nil {
		t.Fatal("a reported change did not load the count")
	}
	// A second report while that load is in flight: no second load yet.
	nm, _ = m.Update(pendingChangedMsg{})
	m = nm.(model)
	if m.queue.issued != m.queue.got+1 || !m.queue.dirty {
		t.Fatalf("a change during a load: issued %d, got %d, dirty %v", m.queue.issued, m.queue.got, m.queue.dirty)
	}
	// The answer comes: the count shows it, and the one more load goes.
	m, cmd = do(t, m, m.fetchPending(m.queue.issued))
	if !strings.Contains(m.header(), "3 pending") {
		t.Fatalf("header %q lacks 3 pending", m.header())
	}
	if m.queue.dirty || m.queue.issued != m.queue.got+1 || cmd == nil {
		t.Fatal("the change that came during the load was not loaded after it")
	}
	m, _ = do(t, m, cmd)
	// The channel closes: polling takes over.
	close(b.changes)
	nm, _ = m.Update(awaitChange(b.changes)())
	if m = nm.(model); m.queue.changes != nil {
		t.Fatal("the model still waits on a closed channel")
	}
	m.queue.issued = m.queue.got
	if nm, _ := m.Update(pollMsg{}); nm.(model).queue.issued != m.queue.issued+1 {
		t.Fatal("after the channel closed, a poll did not load")
	}
}
