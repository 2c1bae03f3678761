package subsystems

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/anmitsu/go-shlex"
	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Session channel requests the core lets through to the session handler.
// Everything else (x11-req, auth-agent-req@openssh.com, ...) is refused with
// a reason, because the bastion must not become a path for agent or X11
// forwarding unless a module explicitly provides it.
var allowedSessionRequests = map[string]bool{
	"shell": true, "exec": true, "subsystem": true, "env": true, "signal": true,
	"pty-req": true, "window-change": true, "break": true,
}

// Requests refused without a notice: clients send them as liveness probes.
var silentRequests = map[string]bool{
	"keepalive@openssh.com":        true,
	"no-more-sessions@openssh.com": true,
}

var requestNames = map[string]string{
	"x11-req":                         "X11 forwarding (ssh -X)",
	"auth-agent-req@openssh.com":      "agent forwarding (ssh -A)",
	"tcpip-forward":                   "remote port forwarding (ssh -R)",
	"streamlocal-forward@openssh.com": "remote socket forwarding (ssh -R with a socket)",
}

func describeRequest(typ string) string {
	if n, ok := requestNames[typ]; ok {
		return n
	}
	return fmt.Sprintf("request %q", typ)
}

// requestContext returns the context handed to modules: the connection's
// context plus the verified Principal.
func requestContext(ctx ssh.Context) (context.Context, authn.Principal, error) {
	conn, _ := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	p, err := principalOf(conn)
	if err != nil {
		return nil, p, err
	}
	return authn.WithPrincipal(ctx, p), p, nil
}

// moduleContext is requestContext for a request handed to a module: the
// Principal also carries the caller's last strong login (the request
// context of policy conditions reads it), looked up now, since a step-up
// may have been made since the connection authenticated.
func (s *Server) moduleContext(sctx ssh.Context) (context.Context, authn.Principal, error) {
	ctx, p, err := requestContext(sctx)
	if err != nil || s.cfg.StrongLogins == nil {
		return ctx, p, err
	}
	if l, ok := s.cfg.StrongLogins.LastStrong(ctx, p); ok {
		p.LastStrong = &l
		ctx = authn.WithPrincipal(ctx, p)
	}
	return ctx, p, nil
}

// refuse records a refused request on the connection, audits it, and shows
// the reason on the stderr of any session of this connection (OpenSSH does
// not print the reason of a failed request, and sends some with
// want_reply=false, so the user would otherwise never learn why).
func (s *Server) refuse(ctx ssh.Context, kind, typ string) {
	what := describeRequest(typ)
	s.refuseWhy(ctx, kind, typ, fmt.Sprintf("bastion: %s refused: this bastion does not provide it", what), what+" is not enabled")
}

// refuseWhy is refuse with the notice (none if "") and the audited reason
// given.
func (s *Server) refuseWhy(ctx ssh.Context, kind, typ, msg, reason string) {
	s.metrics.refused.WithLabelValues(kind).Inc()
	actor := ""
	if _, p, err := requestContext(ctx); err == nil {
		actor = p.User
	}
	s.recordRefusal(ctx, store.Event{Actor: actor, Action: kind + ".refuse", Target: typ, Decision: "deny", Reason: reason})
	if st := stateOf(ctx); st != nil && msg != "" {
		st.notice(msg)
	}
}

func (st *connState) notice(msg string) {
	st.mu.Lock()
	st.refusals = append(st.refusals, msg)
	outs := append([]func(string){}, st.stderr...)
	st.mu.Unlock()
	for _, out := range outs {
		out(msg)
	}
}

// attach registers a session's stderr for notices and replays earlier ones.
func (st *connState) attach(out func(string)) {
	st.mu.Lock()
	past := append([]string{}, st.refusals...)
	st.stderr = append(st.stderr, out)
	st.mu.Unlock()
	for _, m := range past {
		out(m)
	}
}

// sessionChannel accepts a session channel, filtering its requests before
// charmbracelet/ssh's session handling sees them.
func (s *Server) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	ssh.DefaultSessionHandler(srv, conn, &filteredChannel{NewChannel: nc, s: s, ctx: ctx, conn: conn}, ctx)
}

type filteredChannel struct {
	gossh.NewChannel
	s    *Server
	ctx  ssh.Context
	conn *gossh.ServerConn
}

func (f *filteredChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := f.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	_, p, _ := requestContext(f.ctx)
	go func() {
		defer close(out)
		for r := range reqs {
			if what, ext := certRefusal(p, r.Type); ext != "" {
				// The certificate withholds this (see certRefusal). The
				// reason goes to this channel's stderr before the refusal:
				// OpenSSH closes a session whose forced pty (-t) failed,
				// and would never show a notice given later.
				_, _ = ch.Stderr().Write([]byte(certRefusalMessage(p, what, ext) + "\n"))
				if r.WantReply {
					flushed(f.conn)
					_ = r.Reply(false, nil)
				}
				f.s.refuseWhy(f.ctx, "request", r.Type, "", "certificate without "+ext)
				continue
			}
			if allowedSessionRequests[r.Type] || r.Type == agentRequest && f.s.table.agent {
				// An agent request only marks the session: nothing is
				// forwarded unless the target handler decides to (and
				// agentUnused refuses it for everything else).
				out <- r
				continue
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
			if !silentRequests[r.Type] {
				f.s.refuse(f.ctx, "request", r.Type)
			}
		}
	}()
	return ch, out, nil
}

// handleSession runs exec commands and the shell.
func (s *Server) handleSession(sess ssh.Session) {
	ctx, p, err := s.moduleContext(sess.Context())
	if err != nil {
		fmt.Fprintln(sess.Stderr(), "bastion: no verified identity on this connection")
		_ = sess.Exit(1)
		return
	}
	s.track(sess, true)
	defer s.track(sess, false)
	if st := stateOf(sess.Context()); st != nil {
		_, _, isPty := sess.Pty()
		st.attach(func(m string) {
			if isPty {
				m = strings.ReplaceAll(m, "\n", "\r\n") + "\r"
			}
			fmt.Fprintln(sess.Stderr(), m)
		})
		// A refusal still being decided (an egress -R) is shown first.
		conn, _ := sess.Context().Value(ssh.ContextKeyConn).(*gossh.ServerConn)
		s.waitGlobals(conn, 15*time.Second)
	}
	args := sess.Command()
	if p.ForceCommand != "" {
		// A certificate's force-command critical option replaces whatever
		// the client asked for, as sshd does: the CA decided what this
		// certificate may run.
		forced, err := shlex.Split(p.ForceCommand, true)
		if err != nil || len(forced) == 0 {
			fmt.Fprintf(sess.Stderr(), "bastion: the certificate's force-command %q cannot be parsed\n", p.ForceCommand)
			_ = sess.Exit(1)
			return
		}
		args = forced
	}
	if len(args) == 0 {
		s.agentUnused(sess)
		if s.table.shell == nil {
			fmt.Fprintf(sess, "Hello %s. This bastion has no interactive shell yet; run `%s help` to see the commands.\n", p.User, s.cfg.Host)
			_ = sess.Exit(0)
			return
		}
		_ = sess.Exit(s.table.shell(ctx, sess, nil))
		return
	}
	cmd, ok := s.table.commands[args[0]]
	if !ok && s.table.target != nil {
		// `ssh bastion web-1 -- uptime`: a name that is no command may be
		// a Resource; the target module decides.
		if code, handled := s.table.target(ctx, sess, args); handled {
			_ = sess.Exit(code)
			return
		}
	}
	s.agentUnused(sess)
	if !ok {
		s.metrics.refused.WithLabelValues("command").Inc()
		s.recordRefusal(ctx, store.Event{Actor: p.User, Action: "command.refuse", Target: args[0], Decision: "deny",
			Reason: "unknown command", Details: map[string]string{"args": strings.Join(args, " "), "conn": p.SessionID}})
		fmt.Fprintf(sess.Stderr(), "bastion: unknown command %q; run `%s help` to list the commands\n", args[0], s.cfg.Host)
		_ = sess.Exit(127)
		return
	}
	if why := argsTooLong(args); why != "" {
		// Input bounds at the edge: the bastion's own commands take names,
		// flags and short texts; megabytes of arguments only serve to fill
		// logs and other people's terminals.
		s.recordRefusal(ctx, store.Event{Actor: p.User, Action: "command.refuse", Target: cmd.Name, Decision: "deny", Reason: why})
		fmt.Fprintf(sess.Stderr(), "bastion: %s refused: %s\n", cmd.Name, why)
		_ = sess.Exit(2)
		return
	}
	// A command runs only once its command.run event is durable: whatever
	// it changes is then on record, even if the process dies mid-way.
	if err := s.record(ctx, store.Event{Actor: p.User, Action: "command.run", Target: cmd.Name, Decision: "allow",
		Details: map[string]string{"args": strings.Join(args, " "), "conn": p.SessionID}}); err != nil {
		s.metrics.commands.WithLabelValues(cmd.Name, "refused").Inc()
		fmt.Fprintf(sess.Stderr(), "bastion: %s refused: the audit log cannot record it now; try again later\n", cmd.Name)
		_ = sess.Exit(1)
		return
	}
	code := cmd.Run(ctx, sess, args)
	result := "ok"
	if code != 0 {
		result = "error"
	}
	s.metrics.commands.WithLabelValues(cmd.Name, result).Inc()
	s.recordRefusal(ctx, store.Event{Actor: p.User, Action: "command.exit", Target: cmd.Name, Decision: "allow",
		Details: map[string]string{"exit": fmt.Sprint(code), "conn": p.SessionID}})
	_ = sess.Exit(code)
}

// subsystem dispatches `ssh -s NAME`.
func (s *Server) subsystem(sess ssh.Session) {
	name := sess.Subsystem()
	ctx, p, err := s.moduleContext(sess.Context())
	if err != nil {
		_ = sess.Exit(1)
		return
	}
	s.track(sess, true)
	defer s.track(sess, false)
	if p.ForceCommand != "" {
		// force-command covers subsystems too (sftp included), as in sshd.
		fmt.Fprintf(sess.Stderr(), "bastion: subsystem %q refused: your certificate forces the command %q\n", name, p.ForceCommand)
		s.recordRefusal(ctx, store.Event{Actor: p.User, Action: "subsystem.refuse", Target: name, Decision: "deny", Reason: "certificate force-command"})
		_ = sess.Exit(1)
		return
	}
	s.agentUnused(sess)
	h, ok := s.table.subsystems[name]
	if !ok {
		s.metrics.refused.WithLabelValues("subsystem").Inc()
		s.recordRefusal(ctx, store.Event{Actor: p.User, Action: "subsystem.refuse", Target: name, Decision: "deny", Reason: "unknown subsystem"})
		avail := strings.Join(s.table.SubsystemNames(), ", ")
		if avail == "" {
			avail = "none"
		}
		fmt.Fprintf(sess.Stderr(), "bastion: subsystem %q is not available (available: %s)\n", name, avail)
		_ = sess.Exit(1)
		return
	}
	// The subsystem starts only once its event is durable.
	if err := s.record(ctx, store.Event{Actor: p.User, Action: "subsystem.open", Target: name, Decision: "allow", Details: map[string]string{"conn": p.SessionID}}); err != nil {
		fmt.Fprintf(sess.Stderr(), "bastion: subsystem %q refused: the audit log cannot record it now; try again later\n", name)
		_ = sess.Exit(1)
		return
	}
	_ = sess.Exit(h(ctx, sess, []string{name}))
}

// agentRequest asks for agent forwarding (ssh -A).
const agentRequest = "auth-agent-req@openssh.com"

// agentUnused refuses, with the notice of any other refused request, an
// agent forwarding that this session will not use: only target sessions
// (a host shell, where the policy allows it) ever forward an agent.
func (s *Server) agentUnused(sess ssh.Session) {
	if s.table.agent && ssh.AgentRequested(sess) {
		s.refuse(sess.Context(), "request", agentRequest)
	}
}

// Bounds on the arguments of the bastion's own commands.
const (
	maxCommandArg  = 8 << 10
	maxCommandArgs = 32 << 10
)

func argsTooLong(args []string) string {
	total := 0
	for i, a := range args {
		if len(a) > maxCommandArg {
			return fmt.Sprintf("argument %d is %d bytes; the limit is %d", i, len(a), maxCommandArg)
		}
		total += len(a)
	}
	if total > maxCommandArgs {
		return fmt.Sprintf("the arguments are %d bytes; the limit is %d", total, maxCommandArgs)
	}
	return ""
}
