package tui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// lineIs reports whether one line of the view, without styles and the
// padding after it, is exactly want.
func lineIs(view, want string) bool {
	for _, l := range strings.Split(view, "\n") {
		if strings.TrimRight(ansi.Strip(l), " ") == want {
			return true
		}
	}
	return false
}

// y shows the selected Resource's command alone on a line, from the first
// column; the next key hides it, esc doing nothing more.
func TestYShowsTheCommandAlone(t *testing.T) {
	m := newTestModel(t, "TERM=xterm-256color")
	m = typeKeys(m, "host-1")
	// With a filter, y types; ctrl-y shows.
	m = typeKeys(m, "y")
	if m.filter != "host-1y" || m.yank.cmd != "" {
		t.Fatalf("y while filtering: filter %q, yank %q", m.filter, m.yank.cmd)
	}
	m, _ = press(m, tea.KeyBackspace)
	m, _ = press(m, tea.KeyCtrlY)
	v := m.View()
	if !lineIs(v, "ssh -p 2222 localhost -t host-1") {
		t.Fatalf("ctrl-y does not show the command alone on a line:\n%s", v)
	}
	checkFits(t, v)
	m, _ = press(m, tea.KeyEsc)
	if m.yank.cmd != "" || m.filter != "host-1" {
		t.Fatalf("esc: yank %q, filter %q (esc should only hide)", m.yank.cmd, m.filter)
	}
	// With an empty filter, y; the forward of a tcp Resource.
	m, _ = press(m, tea.KeyCtrlU)
	m = typeKeys(m, "db")
	m, _ = press(m, tea.KeyCtrlU)
	if it, _ := m.selected(); it.Name != "db-1" {
		t.Fatalf("selected %s, want db-1", it.Name)
	}
	m = typeKeys(m, "y")
	if v := m.View(); !lineIs(v, "ssh -p 2222 localhost -N -L 5432:db-1:5432") || !strings.Contains(v, "The command for db-1") {
		t.Fatalf("y on db-1:\n%s", v)
	}
	// Locked: the request command.
	m, _ = press(m, tea.KeyDown) // hides it and moves
	if m.yank.cmd != "" {
		t.Fatal("a key did not hide the command")
	}
	if it, _ := m.selected(); it.Name != "host-1" {
		t.Fatalf("down went to %s", it.Name)
	}
	m, _ = press(m, tea.KeyDown)
	m = typeKeys(m, "y")
	if !lineIs(m.View(), `ssh -p 2222 localhost request create host-2 --reason "..."`) {
		t.Fatalf("y on the locked host-2:\n%s", m.View())
	}
}

// A command wider than the terminal is broken at the width, never cut.
func TestYWrapsALongCommand(t *testing.T) {
	m := newTestModel(t)
	long := strings.Repeat("x", 100)
	m.setItems([]Item{{Name: long, Kind: "ssh", Reachable: true}})
	m = typeKeys(m, "y")
	v := m.View()
	checkFits(t, v)
	if !strings.Contains(strings.ReplaceAll(ansi.Strip(v), "\n", ""), "ssh -p 2222 localhost -t "+long) {
		t.Fatalf("the long command is not whole:\n%s", v)
	}
}

// Names others wrote are made safe in the shown command too.
func TestYIsSafe(t *testing.T) {
	m := newTestModel(t)
	m.setItems([]Item{{Name: "evil\x1b]0;pwned\x07", Kind: "ssh", Reachable: true}})
	m = typeKeys(m, "y")
	if v := m.View(); strings.Contains(v, "\x1b]0;") || strings.Contains(v, "\x07") {
		t.Fatalf("the shown command carries a raw escape: %q", v)
	}
}

// The Sessions page shows ids and kinds whole at 100 and at 80 columns,
// and y shows the command that ends the selected one.
func TestSessionsShowIDsWholeAndY(t *testing.T) {
	now := time.Now()
	b := newLiveBackend(t)
	b.sessions = []Session{
		{ID: "s-0123456789abcdef", Kind: "forward", Resource: "db-1", Target: "db-1:5432", Opened: now, Expires: now.Add(time.Hour), BytesIn: 2048, BytesOut: 5 << 20},
		{ID: "s-fedcba9876543210", Kind: "shell", Resource: "a-very-long-resource-name-indeed", Target: "root@a-very-long-resource-name-indeed", Opened: now.Add(time.Second), Expires: now.Add(30 * time.Minute)},
	}
	for _, width := range []int{100, 80} {
		m := newLiveModel(t, b, width)
		nm, cmd := m.Update(tea.KeyMsg{Type: tea.KeyTab})
		m = drive(t, nm.(model), cmd)
		v := ansi.Strip(m.View())
		for _, want := range []string{"s-0123456789abcdef", "s-fedcba9876543210", "forward", "shell", "TTL LEFT", "IN/OUT"} {
			if !strings.Contains(v, want) {
				t.Fatalf("at %d columns the sessions page lacks %q:\n%s", width, want, v)
			}
		}
		for i, l := range strings.Split(m.View(), "\n") {
			if w := ansi.StringWidth(l); w > width {
				t.Fatalf("at %d columns line %d is %d wide", width, i, w)
			}
		}
		if !strings.Contains(v, "y command") || !strings.Contains(v, "refresh") {
			t.Fatalf("at %d columns the footer lacks y or refresh:\n%s", width, v)
		}
		m = typeKeys(m, "y")
		if !lineIs(m.View(), "ssh -p 2222 localhost sessions kill s-0123456789abcdef") {
			t.Fatalf("y on a session at %d columns:\n%s", width, m.View())
		}
	}
}

// The footers name ctrl-r and y, and fit 80 columns.
func TestFootersNameTheKeys(t *testing.T) {
	m := newTestModel(t)
	v := ansi.Strip(m.View())
	lines := strings.Split(v, "\n")
	footer := lines[len(lines)-1]
	for _, want := range []string{"enter open", "y command", "ctrl-r refresh", "? help", "q quit"} {
		if !strings.Contains(footer, want) {
			t.Fatalf("the picker's footer %q lacks %q", footer, want)
		}
	}
	checkFits(t, m.View())
	m = typeKeys(m, "h")
	lines = strings.Split(ansi.Strip(m.View()), "\n")
	if footer = lines[len(lines)-1]; !strings.Contains(footer, "ctrl-y command") || !strings.Contains(footer, "q quit") {
		t.Fatalf("the footer while filtering: %q", footer)
	}
	m.width = 200
	lines = strings.Split(ansi.Strip(m.View()), "\n")
	if footer = lines[len(lines)-1]; !strings.Contains(footer, "tab sessions") {
		t.Fatalf("a wide footer leaves hints out: %q", footer)
	}
	m.page = pageHelp
	v = m.View()
	if !strings.Contains(v, "ctrl-r") || !strings.Contains(v, "copy") {
		t.Fatalf("the help lacks ctrl-r or y:\n%s", v)
	}
	m.width = 80
	checkFits(t, m.View())
}
