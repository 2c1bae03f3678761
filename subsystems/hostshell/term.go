package hostshell

import (
	"sync"

	"github.com/charmbracelet/ssh"
)

// term is the user's terminal as one program (the TUI or a target shell)
// sees it: the PTY request with the current size, and the window changes
// meant for that program.
type term struct {
	pty   ssh.Pty
	isPty bool
	win   <-chan ssh.Window
}

// sessionTerm is the session's own terminal, for a program that owns the
// whole session.
func sessionTerm(sess ssh.Session) term {
	pty, win, ok := sess.Pty()
	return term{pty: pty, isPty: ok, win: win}
}

// windows shares one session's window changes between the programs that
// take turns on it: only the current one gets them, and the next one
// starts from the last size seen.
type windows struct {
	mu   sync.Mutex
	pty  ssh.Pty
	last ssh.Window
	cur  chan ssh.Window
}

func newWindows(pty ssh.Pty, src <-chan ssh.Window) *windows {
	w := &windows{pty: pty, last: pty.Window}
	go func() {
		for win := range src {
			w.mu.Lock()
			w.last = win
			if w.cur != nil {
				// Latest wins: drop a size the program has not read yet.
				select {
				case <-w.cur:
				default:
				}
				w.cur <- win
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// take gives the window changes to a new program until release.
func (w *windows) take() term {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur != nil {
		close(w.cur)
	}
	w.cur = make(chan ssh.Window, 1)
	pty := w.pty
	pty.Window = w.last
	return term{pty: pty, isPty: true, win: w.cur}
}

// release ends the current program's window changes.
func (w *windows) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur != nil {
		close(w.cur)
		w.cur = nil
	}
}
