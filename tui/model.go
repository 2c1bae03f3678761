package tui

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

type page int

const (
	pageResources page = iota
	pageSessions
	pageRequests
	pageHelp
)

// Messages from commands.
type (
	resourcesMsg struct {
		items []Item
		err   error
	}
	sessionsMsg struct {
		sessions []Session
		err      error
	}
	killedMsg struct {
		id  string
		err error
	}
	tickMsg time.Time
)

// model is the whole TUI. It is a value: Update returns the new one.
type model struct {
	ctx     context.Context
	backend Backend
	user    string
	host    string
	st      styles
	now     func() time.Time

	width, height int
	page, back    page // back: where help returns to

	items    []Item
	shown    []int // indexes into items that match the filter
	filter   string
	cursor   int // index into shown
	offset   int // first shown row on screen
	loaded   bool
	sessions []Session
	scursor  int
	soffset  int
	ticking  bool
	ticks    int
	form     reqForm // open over the list while active
	queue    queue

	status   string
	statusOK bool // false: status is an error

	choice   Choice
	quitting bool
	onQuit   func() // ends the TUI's input at once
}

func newModel(ctx context.Context, o Options) model {
	w, h := o.Width, o.Height
	if w <= 0 {
		w = 80
	}
	if h <= 0 {
		h = 24
	}
	m := model{
		ctx: ctx, backend: o.Backend, user: o.User, host: o.Host,
		st: newStyles(o.Out, o.Env), now: time.Now,
		width: w, height: h,
	}
	if pw, ok := o.Backend.(PendingWatcher); ok {
		m.queue.changes = pw.PendingChanges(ctx)
	}
	return m
}

func (m model) Init() tea.Cmd {
	// The pending count shows from the start and follows new requests.
	cmds := []tea.Cmd{m.fetchPending(0), m.follow()}
	if !m.loaded {
		cmds = append(cmds, m.loadResources())
	}
	return tea.Batch(cmds...)
}

func (m model) loadResources() tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return resourcesMsg{}
		}
		items, err := b.Resources(ctx)
		return resourcesMsg{items: items, err: err}
	}
}

func (m model) loadSessions() tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return sessionsMsg{}
		}
		s, err := b.Sessions(ctx)
		return sessionsMsg{sessions: s, err: err}
	}
}

func (m model) kill(id string) tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return killedMsg{id: id}
		}
		return killedMsg{id: id, err: b.Kill(ctx, id)}
	}
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// setItems replaces the Resources, sorted by name, keeping the selection.
func (m *model) setItems(items []Item) {
	items = append([]Item(nil), items...)
	sort.SliceStable(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	m.items = items
	m.loaded = true
	m.refilter()
}

// refilter recomputes the shown rows, keeping the selected Resource when it
// still matches.
func (m *model) refilter() {
	prev := ""
	if it, ok := m.selected(); ok {
		prev = it.Name
	}
	m.shown = m.shown[:0]
	m.cursor = 0
	for i, it := range m.items {
		if matches(it, m.filter) {
			if it.Name == prev {
				m.cursor = len(m.shown)
			}
			m.shown = append(m.shown, i)
		}
	}
	m.offset = 0
	m.scroll()
}

func (m model) selected() (Item, bool) {
	if m.cursor < 0 || m.cursor >= len(m.shown) {
		return Item{}, false
	}
	return m.items[m.shown[m.cursor]], true
}

// scroll keeps the cursor on screen.
func (m *model) scroll() {
	n := m.listHeight()
	m.offset = keepVisible(m.cursor, m.offset, n, len(m.shown))
	m.soffset = keepVisible(m.scursor, m.soffset, m.sessionsHeight(), len(m.sessions))
}

func keepVisible(cursor, offset, rows, total int) int {
	if rows < 1 {
		rows = 1
	}
	if cursor < offset {
		offset = cursor
	}
	if cursor >= offset+rows {
		offset = cursor - rows + 1
	}
	if max := total - rows; offset > max {
		offset = max
	}
	if offset < 0 {
		offset = 0
	}
	return offset
}

func (m *model) setStatus(ok bool, format string, args ...any) {
	m.status, m.statusOK = fmt.Sprintf(format, args...), ok
}

func (m model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		if msg.Width > 0 && msg.Height > 0 {
			m.width, m.height = msg.Width, msg.Height
			m.scroll()
		}
		return m, nil
	case resourcesMsg:
		if msg.err != nil {
			m.setStatus(false, "could not list resources: %v", msg.err)
			m.loaded = true
			return m, nil
		}
		m.setItems(msg.items)
		return m, nil
	case sessionsMsg:
		if msg.err != nil {
			m.setStatus(false, "could not list sessions: %v", msg.err)
			return m, nil
		}
		m.sessions = append([]Session(nil), msg.sessions...)
		sort.SliceStable(m.sessions, func(i, j int) bool { return m.sessions[i].Opened.Before(m.sessions[j].Opened) })
		if m.scursor >= len(m.sessions) {
			m.scursor = len(m.sessions) - 1
		}
		if m.scursor < 0 {
			m.scursor = 0
		}
		m.scroll()
		return m, nil
	case killedMsg:
		if msg.err != nil {
			m.setStatus(false, "could not end %s: %v", msg.id, msg.err)
		} else {
			m.setStatus(true, "ended session %s", msg.id)
		}
		return m, m.loadSessions()
	case tickMsg:
		if m.page != pageSessions {
			m.ticking = false
			return m, nil
		}
		m.ticks++
		if m.ticks%10 == 0 {
			return m, tea.Batch(tick(), m.loadSessions())
		}
		return m, tick()
	case requestedMsg:
		return m.requested(msg)
	case pollMsg, pendingMsg, pendingChangedMsg, decidedMsg:
		return m.requestsUpdate(msg)
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m model) quit(c Choice) (tea.Model, tea.Cmd) {
	m.choice, m.quitting = c, true
	if m.onQuit != nil {
		m.onQuit()
	}
	return m, tea.Quit
}

// toSessions shows the Sessions page, loading it and starting the clock
// that counts the TTLs down.
func (m model) toSessions() (tea.Model, tea.Cmd) {
	m.page, m.status = pageSessions, ""
	cmds := []tea.Cmd{m.loadSessions()}
	if !m.ticking {
		m.ticking = true
		cmds = append(cmds, tick())
	}
	return m, tea.Batch(cmds...)
}

func (m model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.Type == tea.KeyCtrlC {
		return m.quit(Choice{})
	}
	switch m.page {
	case pageHelp:
		switch k.String() {
		case "q":
			return m.quit(Choice{})
		case "esc", "?", "tab", "enter", "backspace":
			m.page = m.back
			switch m.page {
			case pageSessions:
				return m.toSessions()
			case pageRequests:
				return m.toRequests()
			}
		}
		return m, nil
	case pageSessions:
		return m.sessionsKey(k)
	case pageRequests:
		return m.queueKey(k)
	}
	if m.form.active {
		return m.formKey(k)
	}
	return m.resourcesKey(k)
}

func (m model) resourcesKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	m.status = ""
	switch k.Type {
	case tea.KeyUp, tea.KeyCtrlP:
		m.cursor--
	case tea.KeyDown, tea.KeyCtrlN:
		m.cursor++
	case tea.KeyPgUp:
		m.cursor -= m.listHeight()
	case tea.KeyPgDown:
		m.cursor += m.listHeight()
	case tea.KeyHome:
		m.cursor = 0
	case tea.KeyEnd:
		m.cursor = len(m.shown) - 1
	case tea.KeyTab:
		return m.toSessions()
	case tea.KeyEsc:
		if m.filter != "" {
			m.filter = ""
			m.refilter()
		}
		return m, nil
	case tea.KeyBackspace, tea.KeyCtrlH:
		if r := []rune(m.filter); len(r) > 0 {
			m.filter = string(r[:len(r)-1])
			m.refilter()
		}
		return m, nil
	case tea.KeyCtrlU:
		m.filter = ""
		m.refilter()
		return m, nil
	case tea.KeyCtrlW:
		f := strings.TrimRight(m.filter, " ")
		if i := strings.LastIndexByte(f, ' '); i >= 0 {
			m.filter = f[:i+1]
		} else {
			m.filter = ""
		}
		m.refilter()
		return m, nil
	case tea.KeyCtrlR:
		return m, m.loadResources()
	case tea.KeyEnter:
		return m.enter()
	case tea.KeySpace:
		if m.filter != "" {
			m.filter += " "
			m.refilter()
		}
		return m, nil
	case tea.KeyRunes:
		if k.Alt {
			return m, nil
		}
		s := string(k.Runes)
		if m.filter == "" && !k.Paste {
			switch s {
			case "q":
				return m.quit(Choice{})
			case "s":
				return m.toSessions()
			case "r":
				return m.toRequests()
			}
		}
		if s == "?" && !k.Paste {
			m.page, m.back = pageHelp, pageResources
			return m, nil
		}
		s = strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return -1
			}
			return r
		}, s)
		m.filter += s
		m.refilter()
		return m, nil
	}
	m.cursor = min(max(m.cursor, 0), max(len(m.shown)-1, 0))
	m.scroll()
	return m, nil
}
