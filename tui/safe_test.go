package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// hostile holds, in every field someone else wrote, what a terminal would
// act on: ESC sequences (retitle, clear), a line break (forge a row), a C1
// CSI and a bidi override.
const hostile = "x\x1b]0;pwned\x07\x1b[2J\r\nrow\u009b2J\u202e"

// noRawControls fails when v holds a control character our own drawing
// does not use: with TERM=dumb the TUI draws no escape sequences at all.
func noRawControls(t *testing.T, what, v string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"} {
		if strings.Contains(v, bad) {
			t.Fatalf("%s: %q reached the screen:\n%q", what, bad, v)
		}
	}
	if !strings.Contains(v, `\x1b]0;pwned\x07\x1b[2J`) {
		t.Fatalf("%s: the hostile text is not shown escaped:\n%s", what, v)
	}
}

func TestResourcesPageDrawsOthersTextSafely(t *testing.T) {
	m := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: 200, Height: 24, Env: []string{"TERM=dumb"},
		User: "alice", Host: "ssh -p 2222 localhost"})
	m.setItems([]Item{{Name: "web" + hostile, Kind: "ssh", Project: "p" + hostile, Address: "a" + hostile + ":22",
		Labels: map[string]string{"env": hostile}, Reachable: true}})
	v := m.View()
	noRawControls(t, "resources page", v)
	if strings.Count(v, "\n") != 23 {
		t.Fatalf("a line break in a field added a line: %d lines", strings.Count(v, "\n")+1)
	}
	// The status quotes what the backend said.
	nm, _ := m.Update(resourcesMsg{err: errString("refused: " + hostile)})
	noRawControls(t, "status", nm.(model).View())
}

func TestSessionsPageDrawsOthersTextSafely(t *testing.T) {
	m := newTestModel(t, "TERM=dumb")
	nm, _ := m.Update(sessionsMsg{sessions: []Session{{ID: "s-1", Kind: "shell", Resource: "web" + hostile,
		Target: "root@" + hostile, Opened: time.Now(), Expires: time.Now().Add(time.Hour)}}})
	m = nm.(model)
	m.page = pageSessions
	m.width = 200
	noRawControls(t, "sessions page", m.View())
}

func TestRequestFormDrawsTheNameSafely(t *testing.T) {
	m := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: 120, Height: 24, Env: []string{"TERM=dumb"}})
	m.setItems([]Item{{Name: "locked" + hostile, Kind: "ssh", Project: "p" + hostile}})
	m, _ = press(m, tea.KeyEnter)
	if !m.form.active {
		t.Fatal("no form")
	}
	noRawControls(t, "request form", m.View())
}

type errString string

func (e errString) Error() string { return string(e) }
