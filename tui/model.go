package tui

import (
	"context"
	"fmt"
	"sort"
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
		seq   int
		items []Item
		err   error
	}
	sessionsMsg struct {
		seq      int
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
	res, ses loads // of the Resources and the sessions; see live.go
	live     live
	filed    map[string]string // Resource → the id of the request filed here
	yank     yank              // the command that y shows, until a key

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
	if w, ok := o.Backend.(Watcher); ok {
		m.live.changes = w.Changes(ctx)
	}
	return m
}

func (m model) Init() tea.Cmd {
	// The pending count shows from the start; everything follows the
	// bastion's changes (live.go).
	cmds := []tea.Cmd{m.fetchPending(0), m.follow()}
	if !m.loaded {
		cmds = append(cmds, m.fetchResources(0))
	}
	return tea.Batch(cmds...)
}

// loadResources loads the Resources again, as the user asked.
func (m *model) loadResources() tea.Cmd { return m.fetchResources(m.res.next()) }

func (m model) fetchResources(seq int) tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return resourcesMsg{seq: seq}
		}
		items, err := b.Resources(ctx)
		return resourcesMsg{seq: seq, items: items, err: err}
	}
}

// loadSessions loads the sessions again, as the user asked.
func (m *model) loadSessions() tea.Cmd { return m.fetchSessions(m.ses.next()) }

func (m model) fetchSessions(seq int) tea.Cmd {
	ctx, b := m.ctx, m.backend
	return func() tea.Msg {
		if b == nil {
			return sessionsMsg{seq: seq}
		}
		s, err := b.Sessions(ctx)
		return sessionsMsg{seq: seq, sessions: s, err: err}
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
		return m.resourcesLoaded(msg)
	case sessionsMsg:
		fresh, more := m.ses.answered(msg.seq)
		var again tea.Cmd
		if more {
			again = m.loadSessions()
		}
		if !fresh {
			return m, nil
		}
		if msg.err != nil {
			m.setStatus(false, "could not list sessions: %v", msg.err)
			return m, again
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
		return m, again
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
	case pendingMsg, decidedMsg:
		return m.requestsUpdate(msg)
	case changedMsg, debouncedMsg, pollMsg:
		return m.liveUpdate(msg)
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
	if m.yank.cmd != "" {
		// Any key hides the command; esc only that.
		m.yank = yank{}
		if k.Type == tea.KeyEsc {
			return m, nil
		}
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
