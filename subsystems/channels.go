package subsystems

import (
	"fmt"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/store"
)

var channelNames = map[string]string{
	"direct-tcpip":                   "TCP forwarding (ssh -L, -W, -J)",
	"direct-streamlocal@openssh.com": "socket forwarding (ssh -L with a socket)",
	"forwarded-tcpip":                "remote forwarding",
	"x11":                            "X11 forwarding",
	"auth-agent@openssh.com":         "agent forwarding",
	"tun@openssh.com":                "tunnel devices (ssh -w)",
}

// channel dispatches every non-session channel type through the table, and
// refuses what no module registered, with the reason in the open-failure
// message (OpenSSH prints it: "open failed: administratively prohibited").
func (s *Server) channel(_ *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, sctx ssh.Context) {
	typ := nc.ChannelType()
	ctx, p, err := s.moduleContext(sctx)
	if err != nil {
		_ = nc.Reject(gossh.Prohibited, "no verified identity on this connection")
		return
	}
	if h, ok := s.table.channels[typ]; ok {
		h(ctx, conn, nc)
		return
	}
	what, ok := channelNames[typ]
	if !ok {
		what = fmt.Sprintf("channel type %q", typ)
	}
	reason := what + " is not enabled on this bastion"
	s.metrics.refused.WithLabelValues("channel").Inc()
	s.recordRefusal(ctx, store.Event{Actor: p.User, Action: "channel.refuse", Target: typ, Decision: "deny", Reason: reason,
		Details: map[string]string{"conn": p.SessionID}})
	code := gossh.Prohibited
	if !ok {
		code = gossh.UnknownChannelType
	}
	_ = nc.Reject(code, reason)
}

// globalRequest refuses every global request no module handles (remote
// forwarding above all: the bastion never listens on behalf of a client).
func (s *Server) globalRequest(ctx ssh.Context, _ *ssh.Server, req *gossh.Request) (bool, []byte) {
	if h, ok := s.table.globals[req.Type]; ok {
		if mctx, _, err := s.moduleContext(ctx); err == nil {
			conn, _ := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
			s.decide(conn, 1)
			r := h(mctx, conn, req)
			s.decide(conn, -1)
			if r.Handled {
				if !r.OK {
					s.metrics.refused.WithLabelValues("request").Inc()
					if st := stateOf(ctx); st != nil && r.Notice != "" {
						st.notice(r.Notice)
					}
				}
				return r.OK, r.Payload
			}
		}
	}
	if !silentRequests[req.Type] {
		s.refuse(ctx, "request", req.Type)
	}
	return false, nil
}

func (s *Server) decide(conn *gossh.ServerConn, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deciding[conn] += d; s.deciding[conn] <= 0 {
		delete(s.deciding, conn)
	}
}

// waitGlobals waits (up to limit) until no module is still deciding a
// global request of conn: `ssh -R NS/SVC:... bastion CMD` sends the -R
// first, and its refusal, which OpenSSH does not print, must reach the
// command's stderr before the command ends.
func (s *Server) waitGlobals(conn *gossh.ServerConn, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		n := s.deciding[conn]
		s.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
