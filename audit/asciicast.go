package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// Recorder writes a terminal session as asciicast v2: a JSON header line,
// then one [time, code, data] line per event. Only output ("o") and resize
// ("r") events are recorded: input is off on purpose, because what users
// type includes passwords (sudo, su) that must never land in storage.
type Recorder struct {
	mu      sync.Mutex
	sink    func([]byte) error
	start   time.Time
	buf     bytes.Buffer
	pending []byte // an incomplete UTF-8 sequence held for the next write
	err     error
	timer   *time.Timer
	closed  bool
}

// flushSize and flushDelay bound what a crash can lose.
const (
	flushSize  = 32 << 10
	flushDelay = time.Second
)

// NewRecorder starts a recording; sink receives chunks of the cast file.
func NewRecorder(width, height int, env map[string]string, title string, sink func([]byte) error) (*Recorder, error) {
	r := &Recorder{sink: sink, start: time.Now()}
	hdr := map[string]any{"version": 2, "width": width, "height": height, "timestamp": r.start.Unix()}
	if len(env) > 0 {
		hdr["env"] = env
	}
	if title != "" {
		hdr["title"] = title
	}
	line, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	r.buf.Write(line)
	r.buf.WriteByte('\n')
	return r, r.flushLocked()
}

// Output records p as printed to the terminal.
func (r *Recorder) Output(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	data := append(r.pending, p...)
	// Keep an incomplete trailing rune for the next call, so multi-byte
	// characters split across writes are not mangled.
	cut := len(data)
	for i := 1; i <= 3 && i <= len(data); i++ {
		if utf8.RuneStart(data[len(data)-i]) {
			if !utf8.FullRune(data[len(data)-i:]) {
				cut = len(data) - i
			}
			break
		}
	}
	r.pending = append([]byte(nil), data[cut:]...)
	r.event("o", string(data[:cut]))
}

// Resize records a terminal size change.
func (r *Recorder) Resize(width, height int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.event("r", fmt.Sprintf("%dx%d", width, height))
	}
}

func (r *Recorder) event(code, data string) {
	if data == "" {
		return
	}
	line, _ := json.Marshal([]any{float64(time.Since(r.start).Microseconds()) / 1e6, code, data})
	r.buf.Write(line)
	r.buf.WriteByte('\n')
	if r.buf.Len() >= flushSize {
		_ = r.flushLocked()
	} else if r.timer == nil {
		r.timer = time.AfterFunc(flushDelay, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.timer = nil
			_ = r.flushLocked()
		})
	}
}

func (r *Recorder) flushLocked() error {
	if r.buf.Len() == 0 || r.err != nil {
		return r.err
	}
	r.err = r.sink(bytes.Clone(r.buf.Bytes()))
	r.buf.Reset()
	return r.err
}

// Close flushes what is left and stops recording.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.err
	}
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	if len(r.pending) > 0 {
		r.event("o", string(r.pending))
	}
	return r.flushLocked()
}
