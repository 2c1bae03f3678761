package tui

import (
	"context"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

var sample = []Item{
	{Name: "host-1", Kind: "ssh", Project: "payments", Address: "10.0.0.1:22", Ports: []int{22}, Labels: map[string]string{"env": "prod"}, Reachable: true},
	{Name: "db-1", Kind: "tcp", Project: "payments", Address: "10.0.0.2", Ports: []int{5432}, Reachable: true},
	{Name: "host-2", Kind: "ssh", Project: "web", Labels: map[string]string{"env": "staging"}},
	{Name: "prod", Kind: "kube", Project: "platform", Reachable: true},
}

func newTestModel(t *testing.T, env ...string) model {
	t.Helper()
	m := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: 80, Height: 24, Env: env, User: "alice", Host: "ssh -p 2222 localhost"})
	m.setItems(sample)
	return m
}

func typeKeys(m model, s string) model {
	for _, r := range s {
		nm, _ := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		m = nm.(model)
	}
	return m
}

func press(m model, k tea.KeyType) (model, tea.Cmd) {
	nm, cmd := m.Update(tea.KeyMsg{Type: k})
	return nm.(model), cmd
}

func TestFilterNarrowsTheList(t *testing.T) {
	m := newTestModel(t)
	if len(m.shown) != 4 {
		t.Fatalf("shown %d, want 4", len(m.shown))
	}
	m = typeKeys(m, "host")
	if len(m.shown) != 2 {
		t.Fatalf("after 'host' shown %d, want 2", len(m.shown))
	}
	m = typeKeys(m, " staging")
	if len(m.shown) != 1 || m.items[m.shown[0].item].Name != "host-2" {
		t.Fatalf("after 'host staging' shown %v", m.shown)
	}
	m, _ = press(m, tea.KeyEsc)
	if m.filter != "" || len(m.shown) != 4 {
		t.Fatalf("esc did not clear: %q %d", m.filter, len(m.shown))
	}
}

func TestEnterOpensReachableSSHAndRefusesLocked(t *testing.T) {
	m := newTestModel(t)
	m = typeKeys(m, "host-2")
	if v := m.View(); !strings.Contains(v, "ssh -p 2222 localhost request create host-2") {
		t.Fatalf("the locked detail does not say how to request:\n%s", v)
	}
	m, cmd := press(m, tea.KeyEnter)
	if m.quitting || cmd != nil {
		t.Fatal("enter on a locked Resource quit the TUI")
	}
	if !m.form.active || !strings.Contains(m.View(), "host-2 is locked") {
		t.Fatalf("enter on a locked Resource did not open the request form:\n%s", m.View())
	}
	// esc leaves the form for the whole list, as esc on the list does.
	m, _ = press(m, tea.KeyEsc)
	if m.form.active || m.filter != "" {
		t.Fatalf("esc: form %v, filter %q", m.form.active, m.filter)
	}
	if it, _ := m.selected(); it.Name != "host-2" {
		t.Fatalf("esc lost the selection: %s", it.Name)
	}
	m = typeKeys(m, "host-1")
	m, cmd = press(m, tea.KeyEnter)
	if !m.quitting || m.choice.Open != "host-1" || cmd == nil {
		t.Fatalf("enter on host-1: quitting=%v choice=%+v", m.quitting, m.choice)
	}
}

func TestQQuitsOnlyWithAnEmptyFilter(t *testing.T) {
	m := newTestModel(t)
	m = typeKeys(m, "d")
	m = typeKeys(m, "q")
	if m.quitting || m.filter != "dq" {
		t.Fatalf("q with a filter: quitting=%v filter=%q", m.quitting, m.filter)
	}
	m, _ = press(m, tea.KeyCtrlU)
	m = typeKeys(m, "q")
	if !m.quitting || m.choice.Open != "" {
		t.Fatalf("q did not quit: %+v", m.choice)
	}
}

func TestViewFitsAndShowsCommands(t *testing.T) {
	m := newTestModel(t)
	m = typeKeys(m, "db")
	v := m.View()
	lines := strings.Split(v, "\n")
	if len(lines) > 24 {
		t.Fatalf("view has %d lines, more than 24", len(lines))
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > 80 {
			t.Fatalf("line %d is %d cells wide: %q", i, w, l)
		}
	}
	// The local port is not the bastion's own (2222) on localhost.
	if !strings.Contains(v, "ssh -p 2222 localhost -N -L 5432:db-1:5432") {
		t.Fatalf("view lacks the forward command:\n%s", v)
	}
	for _, col := range []string{"NAME", "KIND", "PROJECT", "LABELS"} {
		if !strings.Contains(v, col) {
			t.Fatalf("view lacks column %s", col)
		}
	}
}

func TestNoColor(t *testing.T) {
	m := newTestModel(t, "TERM=xterm-256color", "NO_COLOR=1")
	if v := m.View(); strings.Contains(v, "\x1b[") {
		t.Fatalf("NO_COLOR view has escape sequences: %q", v[:min(len(v), 200)])
	}
	c := newTestModel(t, "TERM=xterm-256color")
	if v := c.View(); !strings.Contains(v, "\x1b[") {
		t.Fatal("a colour terminal got no styles")
	}
}

func TestConnectLinesKube(t *testing.T) {
	got := connectLines("ssh bastion.example", Item{Name: "prod", Kind: "kube", Reachable: true})
	var cmds []string
	for _, h := range got {
		cmds = append(cmds, h.cmd)
	}
	want := []string{"ssh bastion.example kubeconfig prod", "ssh bastion.example -N -L 6443:prod:443"}
	for _, w := range want {
		if !strings.Contains(strings.Join(cmds, "\n"), w) {
			t.Fatalf("kube commands %q lack %q", cmds, w)
		}
	}
}
