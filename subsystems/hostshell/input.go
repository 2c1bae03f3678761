package hostshell

import (
	"io"
	"sync"
)

// inputMux owns the user's stdin. One goroutine reads it and hands every
// chunk to whoever holds the input now (the TUI, or a target shell). It
// exists because a program reading the session directly (bubbletea) cannot
// be interrupted: when it ends, its pending Read would swallow the first
// keys meant for the next program.
type inputMux struct {
	mu   sync.Mutex
	cond *sync.Cond
	cur  *muxReader
	err  error
}

func newInputMux(src io.Reader) *inputMux {
	m := &inputMux{}
	m.cond = sync.NewCond(&m.mu)
	go m.pump(src)
	return m
}

func (m *inputMux) pump(src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			m.mu.Lock()
			for m.cur == nil && m.err == nil {
				m.cond.Wait()
			}
			if r := m.cur; r != nil {
				r.push(buf[:n])
			}
			m.mu.Unlock()
		}
		if err != nil {
			m.mu.Lock()
			m.err = err
			if m.cur != nil {
				m.cur.fail(err)
			}
			m.cond.Broadcast()
			m.mu.Unlock()
			return
		}
	}
}

// take gives the input to a new reader until release.
func (m *inputMux) take() *muxReader {
	r := &muxReader{}
	r.cond = sync.NewCond(&r.mu)
	m.mu.Lock()
	if m.cur != nil {
		m.cur.fail(io.EOF)
	}
	m.cur = r
	if m.err != nil {
		r.fail(m.err)
	}
	m.cond.Broadcast()
	m.mu.Unlock()
	return r
}

// release ends r's hold: its readers see EOF, and input waits for the next.
func (m *inputMux) release(r *muxReader) {
	m.mu.Lock()
	if m.cur == r {
		m.cur = nil
	}
	m.mu.Unlock()
	r.fail(io.EOF)
}

// muxReader is one holder's view of the input.
type muxReader struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	err  error
}

func (r *muxReader) push(p []byte) {
	r.mu.Lock()
	if r.err == nil {
		r.buf = append(r.buf, p...)
	}
	r.cond.Broadcast()
	r.mu.Unlock()
}

func (r *muxReader) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.cond.Broadcast()
	r.mu.Unlock()
}

func (r *muxReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.buf) == 0 && r.err == nil {
		r.cond.Wait()
	}
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		return n, nil
	}
	return 0, r.err
}
