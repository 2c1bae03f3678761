package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/pkg/sftp"
)

// A file in a pod is one streaming exec: cat out of the container for a
// read, cat into it for a write. The SFTP server hands reads and writes
// to several workers, so they may arrive somewhat out of order; a window
// of recent bytes (reads) and a bounded set of early chunks (writes) put
// them back in order without ever holding a whole file.
const (
	podReadWindow  = 4 << 20
	podWriteAhead  = 16 << 20
	podOpenTimeout = "the container did not answer"
)

// OpenFile opens a file in a container: read-only, or written whole
// (truncated, appended, or new).
func (t *podTree) OpenFile(hp string, flags int) (file, error) {
	pp := splitPod(hp)
	if err := inContainer(pp, "open"); err != nil {
		return nil, err
	}
	if err := t.access(pp); err != nil {
		return nil, err
	}
	if flags&(os.O_WRONLY|os.O_RDWR) == 0 {
		pf := &podFile{t: t, pp: pp}
		if err := pf.startRead(0); err != nil {
			return nil, err
		}
		return pf, nil
	}
	mode := "fresh"
	switch {
	case flags&os.O_EXCL != 0 && flags&os.O_CREATE != 0:
		mode = "excl"
	case flags&os.O_TRUNC != 0:
		mode = "trunc"
	case flags&os.O_APPEND != 0:
		mode = "append"
	}
	pf := &podFile{t: t, pp: pp, pending: map[int64][]byte{}}
	if err := pf.startWrite(mode); err != nil {
		return nil, err
	}
	return pf, nil
}

type podFile struct {
	t  *podTree
	pp podPath

	mu sync.Mutex
	// reading
	out      io.ReadCloser // the running cat's stdout (after "ok")
	cancel   context.CancelFunc
	winStart int64  // offset of win[0]
	win      []byte // the bytes last read, up to podReadWindow
	eof      bool
	// writing
	in      *io.PipeWriter
	done    chan error // the writing exec's end
	pos     int64      // bytes written to the exec
	pending map[int64][]byte
	held    int
}

// start runs script with stdin and waits for its "ok" (or its end).
func (x *podFile) start(script string, stdin io.Reader, args ...string) (io.ReadCloser, chan error, error) {
	ctx, cancel := context.WithCancel(x.t.f.ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := x.t.f.m.cfg.Pods.PodExec(ctx, x.t.f.p, x.t.r, x.pp.ns, x.pp.pod, x.pp.container,
			append([]string{"sh", "-c", script, "sh"}, args...), stdin, pw)
		err = x.t.execErr(x.pp, err)
		if err == nil {
			pw.Close()
		} else {
			pw.CloseWithError(err)
		}
		done <- err
	}()
	ok := make([]byte, 2)
	if _, err := io.ReadFull(pr, ok); err != nil || string(ok) != "ok" {
		cancel()
		pr.Close()
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = <-done
			if err == nil {
				err = fmt.Errorf("%s: %w", podOpenTimeout, sftp.ErrSSHFxFailure)
			}
		}
		return nil, nil, err
	}
	x.cancel = cancel
	return pr, done, nil
}

func (x *podFile) startRead(off int64) error {
	if x.cancel != nil {
		x.cancel()
		x.out.Close()
	}
	out, _, err := x.start(readScript, nil, x.pp.inner, strconv.FormatInt(off+1, 10))
	if err != nil {
		return err
	}
	x.out, x.winStart, x.win, x.eof = out, off, x.win[:0], false
	return nil
}

// ReadAt serves p from the window, reading the stream forward as far as
// needed; an offset before the window restarts the stream there.
func (x *podFile) ReadAt(p []byte, off int64) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.out == nil {
		return 0, fmt.Errorf("the file was opened for writing: %w", sftp.ErrSSHFxFailure)
	}
	if off < x.winStart {
		if err := x.startRead(off); err != nil {
			return 0, err
		}
	}
	want := off + int64(len(p))
	for !x.eof && x.winStart+int64(len(x.win)) < want {
		buf := make([]byte, 64<<10)
		n, err := x.out.Read(buf)
		x.win = append(x.win, buf[:n]...)
		if err == io.EOF {
			x.eof = true
		} else if err != nil {
			return 0, err
		}
		// Keep the window bounded, but never drop what p still needs.
		if drop := len(x.win) - podReadWindow; drop > 0 && x.winStart+int64(drop) <= off {
			x.win = append(x.win[:0:0], x.win[drop:]...)
			x.winStart += int64(drop)
		}
	}
	end := x.winStart + int64(len(x.win))
	if off >= end {
		return 0, io.EOF
	}
	n := copy(p, x.win[off-x.winStart:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (x *podFile) startWrite(mode string) error {
	pr, pw := io.Pipe()
	out, done, err := x.start(writeScript, pr, x.pp.inner, mode)
	if err != nil {
		pw.Close()
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	x.in, x.done = pw, done
	return nil
}

// WriteAt writes in order: a chunk past the end so far waits (bounded)
// for the ones before it.
func (x *podFile) WriteAt(p []byte, off int64) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.in == nil {
		return 0, fmt.Errorf("the file was opened for reading: %w", sftp.ErrSSHFxFailure)
	}
	switch {
	case off < x.pos:
		x.t.f.say("bastion: a file in a pod is written front to back; rewriting earlier bytes is not supported")
		return 0, fmt.Errorf("write at %d behind %d: %w", off, x.pos, sftp.ErrSSHFxOpUnsupported)
	case off > x.pos:
		if x.held+len(p) > podWriteAhead {
			return 0, fmt.Errorf("writes more than %d bytes out of order: %w", podWriteAhead, sftp.ErrSSHFxOpUnsupported)
		}
		x.pending[off] = append([]byte(nil), p...)
		x.held += len(p)
		return len(p), nil
	}
	if _, err := x.in.Write(p); err != nil {
		return 0, err
	}
	x.pos += int64(len(p))
	for {
		next, ok := x.pending[x.pos]
		if !ok {
			return len(p), nil
		}
		delete(x.pending, x.pos)
		x.held -= len(next)
		if _, err := x.in.Write(next); err != nil {
			return 0, err
		}
		x.pos += int64(len(next))
	}
}

// Close ends the exec; for a write, its exit is the result.
func (x *podFile) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.in != nil {
		x.in.Close()
		err := <-x.done
		x.cancel()
		if err == nil && len(x.pending) > 0 {
			err = fmt.Errorf("the upload left a hole at byte %d: %w", x.pos, sftp.ErrSSHFxFailure)
		}
		return err
	}
	if x.cancel != nil {
		x.cancel()
		x.out.Close()
	}
	return nil
}
