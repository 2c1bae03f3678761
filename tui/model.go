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
	shown    []line // the rows that match the filter
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
	filed    map[string]string    // Resource → the id of the request filed here
	yank     yank                 // the command that y shows, until a key
	expanded map[string]bool      // kube Resources whose workloads show
	trees    map[string]*kubeTree // their workloads, listed when expanded
	want     PodRef               // the pod to select once listed
	ns       nsPrompt             // asking for a namespace to list
	// listTimeout bounds a listing of workloads (0: workloadTimeout).
	listTimeout time.Duration
	stepUp      stepUpState // a step-up running over the list

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
	m.want = o.Selected
	if o.Notice != "" {
		m.setStatus(false, "%s", o.Notice)
	}
	for _, name := range o.Expanded {
		if m.expanded == nil {
			m.expanded, m.trees = map[string]bool{}, map[string]*kubeTree{}
		}
		m.expanded[name] = true
		m.trees[name] = &kubeTree{named: o.Named[name]}
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
	// Back from a pod: what was expanded is listed again.
	for _, it := range m.items {
		if m.expanded[it.Name] && it.Kind == "kube" && it.Reachable {
			cmds = append(cmds, m.expand(it))
		}
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
	prev, prevRes := m.selectedKey()
	m.items = items
	m.loaded = true
	m.refilterKeep(prev, prevRes)
}

// refilter recomputes the shown rows, keeping the selected Resource when it
// still matches.
//
// The workloads of an expanded kube Resource show under it: all of them
// when the Resource matches, else those that match (and the Resource).
func (m *model) refilter() { m.refilterKeep(m.selectedKey()) }

// selectedKey names the selected row and its Resource.
func (m model) selectedKey() (row, res string) {
	if l, ok := m.selectedLine(); ok {
		return m.lineKey(l), m.items[l.item].Name
	}
	return "", ""
}

// refilterKeep recomputes the shown rows, selecting the row named prev,
// else the Resource prevRes.
func (m *model) refilterKeep(prev, prevRes string) {
	m.shown = m.shown[:0]
	m.cursor = 0
	found := false
	for i, it := range m.items {
		self := matches(it, m.filter)
		var subs []int
		if t := m.trees[it.Name]; m.expanded[it.Name] && t != nil {
			for j, r := range t.rows {
				if self || r.matches(m.filter) {
					subs = append(subs, j)
				}
			}
		}
		if !self && len(subs) == 0 {
			continue
		}
		for j, sub := range append([]int{-1}, subs...) {
			l := line{item: i, sub: sub}
			switch k := m.lineKey(l); {
			case k == prev:
				m.cursor, found = len(m.shown), true
			case !found && j == 0 && it.Name == prevRes:
				m.cursor = len(m.shown) // the row went: its Resource
			}
			m.shown = append(m.shown, l)
		}
	}
	m.scroll()
}

// selected is the Resource of the selected row (the row's own, or the
// one a workload row is under).
func (m model) selected() (Item, bool) {
	l, ok := m.selectedLine()
	if !ok {
		return Item{}, false
	}
	return m.items[l.item], true
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
	case workloadsMsg:
		return m.workloadsLoaded(msg)
	case stepUpStartedMsg, stepUpDoneMsg:
		return m.stepUpUpdate(msg)
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
	if m.stepUp.active {
		return m.stepUpKey(k)
	}
	if m.ns.active {
		return m.nsKey(k)
	}
	return m.resourcesKey(k)
}
