package forward

import (
	"io"
	"net"
	"sync"
	"sync/atomic"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/subsystems/sessions"
)

// bufPool keeps copy buffers, so a forward allocates nothing per byte.
// They are large so that one Read drains every SSH packet x/crypto has
// queued, and one write syscall carries them all.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// pump copies both ways until both directions ended, counting bytes (up:
// client to target, down: target to client), and returns which side
// ended first.
func pump(ch gossh.Channel, conn net.Conn, up, down func(int)) string {
	var first atomic.Value
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		copyCounting(conn, ch, up)
		first.CompareAndSwap(nil, sessions.ReasonClientClosed)
		// Pass the client's EOF on, as sshd does, and let the target answer.
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			_ = conn.Close()
		}
	}()
	go func() {
		defer wg.Done()
		copyCounting(ch, conn, down)
		first.CompareAndSwap(nil, sessions.ReasonTargetClosed)
		_ = ch.CloseWrite()
	}()
	wg.Wait()
	return first.Load().(string)
}

// copyCounting is io.Copy with a pooled buffer and a byte counter. It never
// uses ReaderFrom/WriterTo, which would bypass the counter.
func copyCounting(dst io.Writer, src io.Reader, count func(int)) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			count(n)
		}
		if err != nil {
			return
		}
	}
}
