package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

func newBackedModel(t *testing.T, b *fakeBackend, env ...string) model {
	t.Helper()
	m := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: 80, Height: 24, Env: env,
		User: "bob", Host: "ssh -p 2222 localhost", Backend: b})
	m.setItems(sample)
	return m
}

// do runs one command, as bubbletea would, and feeds its message back.
func do(t *testing.T, m model, cmd tea.Cmd) (model, tea.Cmd) {
	t.Helper()
	if cmd == nil {
		t.Fatal("no command to run")
	}
	nm, next := m.Update(cmd())
	return nm.(model), next
}

// openForm selects the locked host-2 and presses enter.
func openForm(t *testing.T, m model) model {
	t.Helper()
	m = typeKeys(m, "host-2")
	m, _ = press(m, tea.KeyEnter)
	if !m.form.active || m.form.resource != "host-2" {
		t.Fatalf("no form for host-2: %+v", m.form)
	}
	return m
}

func checkFits(t *testing.T, v string) {
	t.Helper()
	lines := strings.Split(v, "\n")
	if len(lines) > 24 {
		t.Fatalf("view has %d lines, more than 24:\n%s", len(lines), v)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > 80 {
			t.Fatalf("line %d is %d cells wide: %q", i, w, l)
		}
	}
}

func TestRequestFormValidates(t *testing.T) {
	b := &fakeBackend{}
	m := openForm(t, newBackedModel(t, b))
	if m.form.ttl.value != "1h" {
		t.Fatalf("default TTL %q, want 1h", m.form.ttl.value)
	}
	// An empty reason stays on the reason, with an error.
	m, cmd := press(m, tea.KeyEnter)
	if cmd != nil || m.form.focus != 0 || !strings.Contains(m.View(), "a reason is required") {
		t.Fatalf("empty reason: focus %d cmd %v\n%s", m.form.focus, cmd != nil, m.View())
	}
	m = typeKeys(m, "INC-7")
	if m.form.errReason != "" {
		t.Fatal("typing did not clear the reason's error")
	}
	m, _ = press(m, tea.KeyEnter)
	if m.form.focus != 1 {
		t.Fatal("enter on a reason did not move to the TTL")
	}
	m, _ = press(m, tea.KeyCtrlU)
	m = typeKeys(m, "soon")
	m, cmd = press(m, tea.KeyEnter)
	if cmd != nil || !strings.Contains(m.View(), `"soon" is not a duration`) {
		t.Fatalf("bad TTL accepted:\n%s", m.View())
	}
	m, _ = press(m, tea.KeyCtrlU)
	m = typeKeys(m, "-5m")
	if m, cmd = press(m, tea.KeyEnter); cmd != nil || m.form.errTTL == "" {
		t.Fatal("a negative TTL was accepted")
	}
	// Clearing the reason later is caught at submit too.
	m, _ = press(m, tea.KeyTab)
	m, _ = press(m, tea.KeyCtrlU)
	m, _ = press(m, tea.KeyTab)
	m, _ = press(m, tea.KeyCtrlU)
	m = typeKeys(m, "30m")
	if m, cmd = press(m, tea.KeyEnter); cmd != nil || m.form.focus != 0 || m.form.errReason == "" {
		t.Fatalf("submit without a reason: focus %d err %q", m.form.focus, m.form.errReason)
	}
	checkFits(t, m.View())
	if len(b.requested) != 0 {
		t.Fatalf("invalid forms reached the backend: %v", b.requested)
	}
}

func TestRequestFormSubmits(t *testing.T) {
	b := &fakeBackend{}
	m := openForm(t, newBackedModel(t, b))
	m = typeKeys(m, "INC-7: restart the API")
	m, _ = press(m, tea.KeyTab)
	m, _ = press(m, tea.KeyCtrlU)
	m = typeKeys(m, "30m")
	m, cmd := press(m, tea.KeyEnter)
	if !m.form.busy || !strings.Contains(m.View(), "filing the request") {
		t.Fatalf("submitting shows nothing:\n%s", m.View())
	}
	m, _ = do(t, m, cmd)
	want := filed{"host-2", "INC-7: restart the API", 30 * time.Minute}
	if len(b.requested) != 1 || b.requested[0] != want {
		t.Fatalf("RequestAccess calls %+v, want %+v", b.requested, want)
	}
	if m.form.active || !strings.Contains(m.View(), "request r-test1 filed for host-2; a reviewer must approve it") {
		t.Fatalf("after filing:\n%s", m.View())
	}
}

func TestRequestFormShowsTheRefusal(t *testing.T) {
	b := &fakeBackend{refuse: errors.New("no Resource \"host-2\" you may request")}
	m := openForm(t, newBackedModel(t, b, "TERM=xterm-256color", "NO_COLOR=1"))
	m = typeKeys(m, "INC-7")
	m, _ = press(m, tea.KeyEnter)
	m, cmd := press(m, tea.KeyEnter) // the default TTL
	m, _ = do(t, m, cmd)
	v := m.View()
	if !m.form.active || m.form.reason.value != "INC-7" || !strings.Contains(v, `no Resource "host-2" you may request`) {
		t.Fatalf("the refusal is not shown in the form:\n%s", v)
	}
	if strings.Contains(v, "\x1b[") {
		t.Fatalf("NO_COLOR form has escape sequences: %q", v)
	}
	checkFits(t, v)
}

func queueBackend() *fakeBackend {
	now := time.Now()
	return &fakeBackend{pending: []Request{
		{ID: "r-1", User: "alice", Resources: []string{"host-2"}, Reason: "INC-7", TTL: 30 * time.Minute, Created: now.Add(-3 * time.Minute)},
		{ID: "r-2", User: "carol", Resources: []string{"db-1"}, Reason: "migration", TTL: time.Hour, Created: now.Add(-time.Minute)},
	}}
}

func TestPendingCountInTheHeader(t *testing.T) {
	b := queueBackend()
	m := newBackedModel(t, b)
	if strings.Contains(m.View(), "pending") {
		t.Fatal("a count before any load")
	}
	m, _ = do(t, m, m.fetchPending(0))
	if !strings.Contains(m.header(), "2 pending") {
		t.Fatalf("header %q lacks 2 pending", m.header())
	}
	checkFits(t, m.View())
	// Polling never stacks loads: none while an answer is due.
	m.queue.issued = m.queue.got + 1
	nm, _ := m.Update(pollMsg{})
	if nm.(model).queue.issued != m.queue.issued {
		t.Fatal("a poll loaded while a load was in flight")
	}
	m.queue.issued = m.queue.got
	nm, _ = m.Update(pollMsg{})
	if nm.(model).queue.issued != m.queue.issued+1 {
		t.Fatal("a poll did not load")
	}
}

func TestQueueApproveAndDeny(t *testing.T) {
	b := queueBackend()
	m := newBackedModel(t, b)
	m = typeKeys(m, "r")
	if m.page != pageRequests {
		t.Fatal("r did not open the queue")
	}
	m, _ = do(t, m, m.loadPending())
	v := m.View()
	if !harnessContains(v, "Requests to review: 2", "r-1", "alice", "host-2", "INC-7", "3m", "2 pending") {
		t.Fatalf("queue page:\n%s", v)
	}
	checkFits(t, v)

	// esc in the prompt decides nothing.
	m = typeKeys(m, "a")
	m, _ = press(m, tea.KeyEsc)
	if m.queue.deciding != "" || m.page != pageRequests {
		t.Fatal("esc did not cancel the prompt")
	}
	m = typeKeys(m, "a")
	m = typeKeys(m, "ok by me")
	if !strings.Contains(m.View(), "approve r-1, reason (optional): ok by me_") {
		t.Fatalf("prompt:\n%s", m.View())
	}
	m, cmd := press(m, tea.KeyEnter)
	m, cmd = do(t, m, cmd)
	if !strings.Contains(m.status, "approved r-1: alice on host-2") {
		t.Fatalf("status %q", m.status)
	}
	m, _ = do(t, m, cmd) // the reload
	if !strings.Contains(m.View(), "1 pending") || len(m.queue.items) != 1 {
		t.Fatalf("after approving:\n%s", m.View())
	}
	m = typeKeys(m, "d")
	m, cmd = press(m, tea.KeyEnter)
	m, cmd = do(t, m, cmd)
	m, _ = do(t, m, cmd)
	want := []decision{{"r-1", true, "ok by me"}, {"r-2", false, ""}}
	if len(b.decided) != 2 || b.decided[0] != want[0] || b.decided[1] != want[1] {
		t.Fatalf("Decide calls %+v, want %+v", b.decided, want)
	}
	if v := m.View(); strings.Contains(m.header(), "pending") || !strings.Contains(v, "denied r-2") {
		t.Fatalf("after denying:\n%s", v)
	}

	// A refusal shows the backend's reason.
	b.pending = queueBackend().pending[:1]
	b.refuse = errors.New("refused: r-1 is your own request")
	m, _ = do(t, m, m.loadPending())
	m = typeKeys(m, "a")
	m, cmd = press(m, tea.KeyEnter)
	m, _ = do(t, m, cmd)
	if !strings.Contains(m.View(), "could not approve: refused: r-1 is your own request") {
		t.Fatalf("refusal:\n%s", m.View())
	}
	m, _ = press(m, tea.KeyTab)
	if m.page != pageResources {
		t.Fatal("tab did not go back to the Resources")
	}
}

func harnessContains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// A requester's reason reaches the reviewer's terminal: escape sequences
// in it must not.
func TestQueueDrawsReasonsSafely(t *testing.T) {
	b := &fakeBackend{pending: []Request{{ID: "r-1", User: "mallory", Resources: []string{"host-2"},
		Reason: "INC-7\x1b]0;pwned\x07\x1b[2J\nsecond line", Created: time.Now()}}}
	m := newBackedModel(t, b, "TERM=dumb")
	m = typeKeys(m, "r")
	m, _ = do(t, m, m.loadPending())
	v := m.View()
	if strings.ContainsAny(v, "\x1b\x07") {
		t.Fatalf("the reason's control characters reached the screen: %q", v)
	}
	if !strings.Contains(v, `INC-7\x1b]0;pwned\x07\x1b[2J\nsecond line`) {
		t.Fatalf("the reason is not shown, made safe:\n%s", v)
	}
}
