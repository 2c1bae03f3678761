package tui

import (
	"context"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// StepUpper may be implemented by a Backend that can run a step-up (a
// fresh login at the identity provider) from inside the TUI: enter on a
// Resource marked as needing one then runs it, and continues to the
// Resource once it succeeds.
type StepUpper interface {
	// StartStepUp starts a step-up for what resource needs, and returns
	// where the user logs in.
	StartStepUp(ctx context.Context, resource string) (StepUpPrompt, error)
}

// StepUpPrompt is a step-up under way.
type StepUpPrompt struct {
	// Text is where to log in, the code and a QR code, as lines.
	Text string
	// Wait returns once the identity provider answered (or ctx ended):
	// what was done, or why it failed.
	Wait func(ctx context.Context) (string, error)
}

// stepUpState is a step-up running over the list.
type stepUpState struct {
	active   bool
	resource string
	need     string // what satisfies it (Item.StepUp)
	text     string // the prompt, once started
	err      string
	ctx      context.Context
	cancel   context.CancelFunc
	next     Choice // where to go once done; zero: the Resource itself
}

type (
	stepUpStartedMsg struct {
		resource string
		prompt   StepUpPrompt
		err      error
	}
	stepUpDoneMsg struct {
		resource, done string
		err            error
	}
)

// startStepUp runs a step-up for it, then goes to next (or it).
func (m model) startStepUp(it Item, next Choice) (tea.Model, tea.Cmd) {
	su, ok := m.backend.(StepUpper)
	if !ok {
		m.setStatus(false, "%s needs a step-up: run `%s step-up`, then come back", it.Name, m.hostOr())
		return m, nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.stepUp = stepUpState{active: true, resource: it.Name, need: it.StepUp, ctx: ctx, cancel: cancel, next: next}
	name := it.Name
	return m, func() tea.Msg {
		p, err := su.StartStepUp(ctx, name)
		return stepUpStartedMsg{resource: name, prompt: p, err: err}
	}
}

func (m model) stepUpUpdate(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case stepUpStartedMsg:
		if !m.stepUp.active || msg.resource != m.stepUp.resource {
			return m, nil
		}
		if msg.err != nil {
			m.stepUp.err = msg.err.Error()
			return m, nil
		}
		m.stepUp.text = msg.prompt.Text
		// The same context as the start: esc ends the wait too.
		ctx, wait, name := m.stepUp.ctx, msg.prompt.Wait, msg.resource
		return m, func() tea.Msg {
			if wait == nil {
				return stepUpDoneMsg{resource: name}
			}
			done, err := wait(ctx)
			return stepUpDoneMsg{resource: name, done: done, err: err}
		}
	case stepUpDoneMsg:
		if !m.stepUp.active || msg.resource != m.stepUp.resource {
			return m, nil
		}
		if msg.err != nil {
			m.stepUp.err = msg.err.Error()
			return m, nil
		}
		next := m.stepUp.next
		m.stepUp.cancel()
		m.stepUp = stepUpState{}
		// The step-up counts now: the mark goes.
		for i := range m.items {
			if m.items[i].Name == msg.resource {
				m.items[i].StepUp = ""
			}
		}
		m.setStatus(true, "%s", msg.done)
		if next.Pod.Name != "" {
			return m.quit(next)
		}
		it, ok := m.selected()
		if !ok || it.Name != msg.resource {
			return m, m.loadResources()
		}
		switch it.Kind {
		case "ssh":
			return m.quit(Choice{Open: it.Name})
		case "kube":
			return m, tea.Batch(m.loadResources(), m.expand(it))
		}
		return m, m.loadResources()
	}
	return m, nil
}

// stepUpKey: esc gives up (the login at the identity provider is
// abandoned); once failed, any key goes back.
func (m model) stepUpKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.Type == tea.KeyEsc || m.stepUp.err != "" || (k.Type == tea.KeyRunes && string(k.Runes) == "q") {
		failed := m.stepUp.err != ""
		if m.stepUp.cancel != nil {
			m.stepUp.cancel()
		}
		name := m.stepUp.resource
		m.stepUp = stepUpState{}
		if !failed {
			m.setStatus(false, "step-up for %s given up", name)
		}
		return m, nil
	}
	return m, nil
}

func (m model) stepUpView() []string {
	st, s := m.st, m.stepUp
	name := safe(s.resource)
	lines := []string{m.header(), ""}
	lines = append(lines, " "+st.status.Render("Step up for "+name)+": a fresh login at your identity provider")
	for _, l := range wrap(s.need, m.width-2) {
		lines = append(lines, " "+st.dim.Render(safe(l)))
	}
	lines = append(lines, "")
	switch {
	case s.err != "":
		for _, l := range wrap("step-up failed: "+s.err, m.width-2) {
			lines = append(lines, " "+st.errText.Render(safe(l)))
		}
		lines = append(lines, "", " "+st.dim.Render("Any key goes back to the list."))
	case s.text == "":
		lines = append(lines, " "+st.status.Render("starting the login…"))
	default:
		for _, l := range strings.Split(strings.TrimRight(s.text, "\n"), "\n") {
			lines = append(lines, safe(l))
		}
		lines = append(lines, "", " "+st.status.Render("Waiting for you to approve the login… (esc gives up)"))
	}
	return lines
}
