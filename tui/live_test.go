package tui

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// liveBackend is a backend whose Resources and sessions the test changes,
// with a Watcher channel.
type liveBackend struct {
	*fakeBackend
	lmu       sync.Mutex
	items     []Item
	sessions  []Session
	resLoads  int
	sessLoads int
	changes   chan What
}

func newLiveBackend(t *testing.T) *liveBackend {
	b := &liveBackend{fakeBackend: &fakeBackend{}, items: append([]Item(nil), sample...), changes: make(chan What, 1)}
	t.Cleanup(func() { close(b.changes) })
	return b
}

func (b *liveBackend) Changes(context.Context) <-chan What { return b.changes }

func (b *liveBackend) Resources(context.Context) ([]Item, error) {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	b.resLoads++
	return append([]Item(nil), b.items...), nil
}

func (b *liveBackend) Sessions(context.Context) ([]Session, error) {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	b.sessLoads++
	return append([]Session(nil), b.sessions...), nil
}

// grant makes name reachable, as an approval does.
func (b *liveBackend) grant(name string) {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	for i := range b.items {
		if b.items[i].Name == name {
			b.items[i].Reachable = true
		}
	}
}

func (b *liveBackend) loadsDone() (res, sess int) {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	return b.resLoads, b.sessLoads
}

// drive runs cmd and what follows from it, as bubbletea would, for the
// commands that answer within a moment (loads, the debounce); those that
// wait longer (for a report, a poll, the clock) are left.
func drive(t *testing.T, m model, cmd tea.Cmd) model {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for n := 0; len(queue) > 0; n++ {
		if n > 200 {
			t.Fatal("the commands do not settle")
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		ch := make(chan tea.Msg, 1)
		go func() { ch <- c() }()
		var msg tea.Msg
		select {
		case msg = <-ch:
		case <-time.After(300 * time.Millisecond):
			continue
		}
		switch msg := msg.(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		default:
			nm, next := m.Update(msg)
			m = nm.(model)
			queue = append(queue, next)
		}
	}
	return m
}

func newLiveModel(t *testing.T, b Backend, width int) model {
	t.Helper()
	m := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: width, Height: 24, User: "alice",
		Host: "ssh -p 2222 localhost", Backend: b})
	items, _ := b.Resources(context.Background())
	m.setItems(items)
	return m
}

// An approval elsewhere unlocks the Resource without a key: the report
// loads the list, the status says so, an open request form closes, and
// enter opens the shell instead of the form.
func TestApprovalUnlocksWithoutAKey(t *testing.T) {
	b := newLiveBackend(t)
	m := openForm(t, newLiveModel(t, b, 80))
	// A request filed here says so until it is decided.
	m.form.busy = true
	nm, _ := m.Update(requestedMsg{resource: "host-2", id: "r-77"})
	if m = nm.(model); !strings.Contains(m.View(), "Request r-77 is pending: host-2 unlocks here once approved.") {
		t.Fatalf("the detail does not say the request is pending:\n%s", m.View())
	}
	m = openForm(t, m)
	b.grant("host-2")
	nm, _ = m.Update(changedMsg{what: ChangedResources | ChangedRequests})
	m = drive(t, nm.(model), func() tea.Msg { return debouncedMsg{} })
	if m.form.active {
		t.Fatal("the request form stays open for a Resource that is reachable now")
	}
	v := m.View()
	if !strings.Contains(v, "host-2 is reachable now") || !strings.Contains(v, "-t host-2") || strings.Contains(v, "request create host-2") {
		t.Fatalf("after the approval the picker does not show host-2 reachable:\n%s", v)
	}
	if it, _ := m.selected(); it.Name != "host-2" {
		t.Fatalf("the selection moved to %s", it.Name)
	}
	m, _ = press(m, tea.KeyEnter)
	if m.form.active || !m.quitting || m.choice.Open != "host-2" {
		t.Fatalf("enter after the approval: form %v, choice %+v", m.form.active, m.choice)
	}
}

// A burst of reports is one load per page, after the debounce; the
// sessions load only while their page shows; a report during a load
// loads once more after its answer.
func TestReportsAreDebouncedAndNeverStack(t *testing.T) {
	b := newLiveBackend(t)
	m := newLiveModel(t, b, 80)
	r0, _ := b.loadsDone()
	for i := 0; i < 5; i++ {
		nm, _ := m.Update(changedMsg{what: ChangedAll})
		m = nm.(model)
	}
	if !m.live.waiting || m.live.due != ChangedAll || m.res.issued != 0 {
		t.Fatalf("five reports: waiting %v, due %b, loads %+v", m.live.waiting, m.live.due, m.res)
	}
	nm, cmd := m.Update(debouncedMsg{})
	m = nm.(model)
	if m.res.issued != m.res.got+1 || m.ses.issued != m.ses.got {
		t.Fatalf("after the debounce: resources %+v, sessions %+v (the page is not shown)", m.res, m.ses)
	}
	// Another report while the load is in flight: no second load yet.
	nm, _ = m.Update(changedMsg{what: ChangedResources})
	nm, _ = nm.(model).Update(debouncedMsg{})
	if mm := nm.(model); mm.res.issued != m.res.issued || !mm.res.dirty {
		t.Fatalf("a report during a load: %+v", mm.res)
	}
	m = drive(t, nm.(model), cmd)
	if r, _ := b.loadsDone(); r != r0+2 {
		t.Fatalf("%d loads of the Resources, want 2: one, then one for the report during it", r-r0)
	}
	if m.res.dirty || m.res.issued != m.res.got {
		t.Fatalf("loads not settled: %+v", m.res)
	}
	// On the Sessions page, a session report loads them.
	nm, cmd = m.Update(tea.KeyMsg{Type: tea.KeyTab})
	m = drive(t, nm.(model), cmd)
	_, s0 := b.loadsDone()
	b.lmu.Lock()
	b.sessions = []Session{{ID: "s-0123456789abcdef", Kind: "forward", Resource: "db-1", Opened: time.Now(), Expires: time.Now().Add(time.Hour)}}
	b.lmu.Unlock()
	nm, _ = m.Update(changedMsg{what: ChangedSessions})
	m = drive(t, nm.(model), func() tea.Msg { return debouncedMsg{} })
	if _, s := b.loadsDone(); s != s0+1 || len(m.sessions) != 1 {
		t.Fatalf("a session report on the Sessions page: %d loads, %d sessions", s-s0, len(m.sessions))
	}
}

// A slow answer never overwrites a newer one.
func TestStaleResourcesAnswerIsDropped(t *testing.T) {
	b := newLiveBackend(t)
	m := newLiveModel(t, b, 80)
	old := m.fetchResources(m.res.next())
	b.grant("host-2")
	m = drive(t, m, m.loadResources())
	m, _ = do(t, m, old) // answers with the same data; seq 1 < 2
	for _, it := range m.items {
		if it.Name == "host-2" && !it.Reachable {
			t.Fatal("an older answer replaced a newer one")
		}
	}
}

// Without a Watcher, or once its channel closed, everything polls.
func TestPollingWithoutAWatcher(t *testing.T) {
	m := newBackedModel(t, queueBackend())
	if m.live.changes != nil {
		t.Fatal("a backend without Changes is followed")
	}
	nm, _ := m.Update(pollMsg{})
	if mm := nm.(model); mm.res.issued != 1 || mm.queue.issued != 1 {
		t.Fatalf("a poll did not load the Resources and the count: %+v %+v", mm.res, mm.queue.loads)
	}
	b := newLiveBackend(t)
	w := newLiveModel(t, b, 80)
	if w.live.changes == nil {
		t.Fatal("a Watcher is not followed")
	}
	if nm, _ := w.Update(pollMsg{}); nm.(model).res.issued != 0 {
		t.Fatal("a Watcher's model polls")
	}
	nm, _ = w.Update(changedMsg{closed: true})
	if mm := nm.(model); mm.live.changes != nil || mm.res.issued != 1 {
		t.Fatalf("a closed channel: changes %v, loads %+v", mm.live.changes, mm.res)
	}
}

// Run follows a Watcher: a grant shows without a key, then enter opens.
func TestRunFollowsChanges(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	b := newLiveBackend(t)
	out := &syncBuf{}
	done := make(chan Choice, 1)
	go func() {
		c, err := Run(context.Background(), Options{In: inR, Out: out, Width: 80, Height: 24, Env: []string{"TERM=xterm"}, Backend: b})
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	if _, err := io.WriteString(inW, "host-2"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	b.grant("host-2")
	b.changes <- ChangedResources
	deadline := time.Now().Add(10 * time.Second)
	for {
		out.mu.Lock()
		ok := strings.Contains(out.b.String(), "host-2 is reachable now")
		out.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the grant did not show within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := io.WriteString(inW, "\r"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-done:
		if c.Open != "host-2" {
			t.Fatalf("choice %+v, want host-2", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after enter")
	}
}
