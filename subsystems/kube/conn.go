package kube

import (
	"errors"
	"io"
	"net"
	"sync"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// tunnelConn is one forwarded connection (one ssh channel). The HTTP
// server gets it through a net.Pipe: ssh channels have no deadlines, and
// the server needs them (it interrupts its background read with a past
// deadline before handing the connection to an upgrade).
type tunnelConn struct {
	ch gossh.Channel
	p  authn.Principal
	r  store.Resource

	once sync.Once
	done chan struct{}
	a, b net.Conn

	mu      sync.Mutex
	grant   *grant
	handler *identityHandler
}

// pipeConn is the server's end of the pipe, which knows its tunnel.
type pipeConn struct {
	net.Conn
	t *tunnelConn
}

func newTunnelConn(ch gossh.Channel, p authn.Principal, r store.Resource) *tunnelConn {
	c := &tunnelConn{ch: ch, p: p, r: r, done: make(chan struct{})}
	c.a, c.b = net.Pipe()
	go func() {
		_, _ = io.Copy(c.b, ch)
		c.close()
	}()
	go func() {
		_, _ = io.Copy(ch, c.b)
		c.close()
	}()
	return c
}

func (c *tunnelConn) serverConn() net.Conn { return &pipeConn{Conn: c.a, t: c} }

func (c *tunnelConn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.a.Close()
		_ = c.b.Close()
		_ = c.ch.Close()
	})
}

type addr string

func (a addr) Network() string { return "ssh" }
func (a addr) String() string  { return string(a) }

// listener hands accepted tunnel connections to the HTTP server.
type listener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newListener() *listener {
	return &listener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *listener) push(c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		return errors.New("the kube tunnel server is shutting down")
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *listener) Addr() net.Addr { return addr("kube-tunnel") }
