package kube

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// recorder counts a response's status and bytes, including after the
// connection is hijacked for an upgrade.
type recorder struct {
	http.ResponseWriter
	code     int
	bytes    int64
	hijacked *countingConn
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r.hijacked = &countingConn{Conn: c}
	return r.hijacked, rw, nil
}

// status is the response's code; for an upgrade, the one the apiserver
// sent on the hijacked connection.
func (r *recorder) status() int {
	if r.hijacked != nil {
		r.bytes = r.hijacked.n.Load()
		if c := r.hijacked.code.Load(); c != 0 {
			return int(c)
		}
		return http.StatusSwitchingProtocols
	}
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

type countingConn struct {
	net.Conn
	n    atomic.Int64 // written: to the client
	in   atomic.Int64 // read: from the client (stdin, port-forward data)
	code atomic.Int32
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

// bytesIn is what the client sent on the hijacked connection.
func (r *recorder) bytesIn() int64 {
	if r.hijacked == nil {
		return 0
	}
	return r.hijacked.in.Load()
}

func (c *countingConn) Write(p []byte) (int, error) {
	if c.n.Load() == 0 && bytes.HasPrefix(p, []byte("HTTP/1.")) && len(p) >= 12 {
		if code, err := strconv.Atoi(string(p[9:12])); err == nil {
			c.code.Store(int32(code))
		}
	}
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
