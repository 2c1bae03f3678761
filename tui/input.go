package tui

import (
	"io"
	"sync"
)

// stopReader hands bubbletea the session's input and ends its reads as
// soon as the TUI quits. Bubbletea cannot interrupt a Read on a reader that
// is not a file and waits half a second for one before it gives up; this
// reader returns EOF at once instead, so leaving the TUI is immediate.
type stopReader struct {
	ch   chan chunk
	stop chan struct{}
	once sync.Once

	rest []byte // what the last chunk had beyond the caller's buffer
	err  error
}

type chunk struct {
	b   []byte
	err error
}

func newStopReader(src io.Reader) *stopReader {
	r := &stopReader{ch: make(chan chunk), stop: make(chan struct{})}
	go r.pump(src)
	return r
}

func (r *stopReader) pump(src io.Reader) {
	for {
		buf := make([]byte, 4096)
		n, err := src.Read(buf)
		select {
		case r.ch <- chunk{b: buf[:n], err: err}:
		case <-r.stop:
			// The TUI is gone; the caller ends src (Options.In), which
			// ends this goroutine.
			return
		}
		if err != nil {
			return
		}
	}
}

// Stop makes pending and later Reads return io.EOF.
func (r *stopReader) Stop() { r.once.Do(func() { close(r.stop) }) }

func (r *stopReader) Read(p []byte) (int, error) {
	if len(r.rest) > 0 {
		n := copy(p, r.rest)
		r.rest = r.rest[n:]
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	select {
	case <-r.stop:
		return 0, io.EOF
	case c := <-r.ch:
		n := copy(p, c.b)
		r.rest = c.b[n:]
		r.err = c.err
		if n == 0 && c.err != nil {
			return 0, c.err
		}
		return n, nil
	}
}
