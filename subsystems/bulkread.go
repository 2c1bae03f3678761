package subsystems

import (
	"io"
	"sync"
)

// readBufferSize lets one read syscall bring in several SSH packets
// (x/crypto reads through a 4 KiB buffer of its own): bulk forwards spend
// most of their time in syscalls otherwise.
const readBufferSize = 256 << 10

var bulkBuffers = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}

// bulkReader reads straight into the caller's buffer while a connection
// trickles, and switches to a pooled 256 KiB buffer while it streams (a
// read filled the caller's buffer, so more is queued). Idle connections,
// the vast majority, thus hold no big buffer: it goes back to the pool as
// soon as it is drained.
type bulkReader struct {
	r    io.Reader
	bulk bool
	buf  *[]byte
	lo   int
	hi   int
	err  error
}

func (b *bulkReader) Read(p []byte) (int, error) {
	if b.buf != nil {
		n := copy(p, (*b.buf)[b.lo:b.hi])
		b.lo += n
		if b.lo == b.hi {
			bulkBuffers.Put(b.buf)
			b.buf = nil
		}
		return n, nil
	}
	if b.err != nil {
		err := b.err
		b.err = nil
		return 0, err
	}
	if !b.bulk || len(p) >= readBufferSize {
		n, err := b.r.Read(p)
		b.bulk = n == len(p)
		return n, err
	}
	buf := bulkBuffers.Get().(*[]byte)
	n, err := b.r.Read(*buf)
	// Stay in bulk mode while reads come back well filled; a short read
	// means the socket drained, and the next read may wait a long time.
	b.bulk = n >= readBufferSize/4
	m := copy(p, (*buf)[:n])
	if m < n {
		b.buf, b.lo, b.hi = buf, m, n
		b.err = err
		return m, nil
	}
	bulkBuffers.Put(buf)
	return m, err
}
