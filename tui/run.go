package tui

import (
	"context"
	"errors"
	"fmt"
	"io"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows the TUI on the session's streams until the user quits, picks a
// reachable ssh Resource, or ctx ends (the SSH session closed). It returns
// what the user chose; Choice{} when they quit.
//
// Run installs no signal handler and does not use the alternate screen. It
// does not close o.In: a Read that bubbletea has pending on it when Run
// returns ends when o.In does (give Run a reader you can end, such as one
// end of an input multiplexer).
func Run(ctx context.Context, o Options) (Choice, error) {
	if o.Out == nil {
		return Choice{}, errors.New("tui: Options.Out is nil")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	m := newModel(ctx, o)
	// Load the Resources before the first frame, so that keys typed at once
	// (a pasted name and enter) act on the real list.
	if o.Backend != nil {
		items, err := o.Backend.Resources(ctx)
		if err != nil {
			m.setStatus(false, "could not list resources: %v", err)
			m.loaded = true
		} else {
			m.setItems(items)
		}
	} else {
		m.loaded = true
	}

	src := o.In
	if src == nil {
		src = eofReader{}
	}
	in := newStopReader(src)
	defer in.Stop()
	m.onQuit = in.Stop
	p := tea.NewProgram(m,
		tea.WithContext(ctx),
		tea.WithInput(in),
		tea.WithOutput(o.Out),
		tea.WithEnvironment(o.Env),
		tea.WithoutSignalHandler(),
	)

	// Tell the renderer the size (it cannot ask a non-file output), then
	// follow the client's window changes.
	done := make(chan struct{})
	resized := make(chan struct{})
	go func() {
		defer close(resized)
		send := func(w Window) bool {
			select {
			case <-done:
				return false
			default:
			}
			p.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
			return true
		}
		if !send(Window{Width: m.width, Height: m.height}) {
			return
		}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case w, ok := <-o.Resize:
				if !ok {
					return
				}
				if !send(w) {
					return
				}
			}
		}
	}()

	final, err := p.Run()
	close(done)
	cancel() // ends Send in the resize goroutine and pending Backend calls
	<-resized

	if err != nil {
		if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
			if cerr := context.Cause(ctx); cerr != nil && !errors.Is(cerr, context.Canceled) {
				return Choice{}, cerr
			}
		}
		return Choice{}, fmt.Errorf("tui: %w", err)
	}
	fm, ok := final.(model)
	if !ok {
		return Choice{}, nil
	}
	return fm.choice, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
