package hostshell

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// Agent forwarding (ssh -A): the user's agent reaches the onward login
// only where the user holds forward_agent on the Resource, a relation the
// default model grants to nobody. A forwarded agent lets the target sign
// with the user's keys for as long as the session lasts, which is more
// than a shell needs; hence a relation of its own, not act.

// relForwardAgent is the relation that allows agent forwarding.
const relForwardAgent = "forward_agent"

// agentChannel is the channel type of one agent connection.
const agentChannel = "auth-agent@openssh.com"

type agentKey struct{}

type agentAskedKey struct{}

// withAgentAsked marks a target session (ssh -A bastion HOST): only those
// forward an agent; the core refuses -A for every other session.
func withAgentAsked(ctx context.Context) context.Context {
	return context.WithValue(ctx, agentAskedKey{}, true)
}

// withAgent records, for DialHost, that the onward certificate must
// permit agent forwarding (forward_agent was checked).
func withAgent(ctx context.Context) context.Context { return context.WithValue(ctx, agentKey{}, true) }

// withAgentPermission adds permit-agent-forwarding to the onward
// certificate of a session whose forward_agent was checked (agentGate):
// the target's sshd honours the request only with it.
func withAgentPermission(ctx context.Context, perms gossh.Permissions) gossh.Permissions {
	if v, _ := ctx.Value(agentKey{}).(bool); v {
		perms.Extensions[authn.ExtAgentForwarding] = ""
	}
	return perms
}

// agentGate decides whether this session forwards the user's agent to r:
// only if the client asked (ssh -A) and the policy says forward_agent. A
// refusal is audited and told, and the session goes on without the agent.
func (m *Module) agentGate(ctx context.Context, sess ssh.Session, p authn.Principal, r store.Resource) bool {
	if asked, _ := ctx.Value(agentAskedKey{}).(bool); !asked || sess == nil || !ssh.AgentRequested(sess) {
		return false
	}
	dctx := subsystems.DecisionContext(ctx, subsystems.KindSSH)
	ok, err := m.policy.Check(dctx, p.Subject(), relForwardAgent, "resource:"+r.Name)
	if err == nil && ok {
		return true
	}
	why := fmt.Sprintf("%s lacks %s on resource:%s", p.Subject(), relForwardAgent, r.Name) +
		subsystems.UnmetConditions(dctx, m.policy, p.Subject(), relForwardAgent, "resource:"+r.Name)
	if err != nil {
		// Fail closed: an unanswerable question (or a model without the
		// relation) forwards nothing.
		why = fmt.Sprintf("the policy could not say whether %s has %s on resource:%s (%v)", p.Subject(), relForwardAgent, r.Name, err)
	}
	m.recordRefusal(ctx, store.Event{Actor: p.User, Action: "agent.deny", Target: r.Name, Decision: "deny", Reason: why,
		Details: map[string]string{"relation": relForwardAgent, "conn": p.SessionID}})
	fmt.Fprintf(sess.Stderr(), "bastion: agent forwarding (ssh -A) refused: %s; the session goes on without your agent. "+
		"An admin can allow it with: %s tuples add resource:%s#%s@%s%s", why, m.cfg.Host, r.Name, relForwardAgent, p.Subject(), eol(sess))
	return false
}

// eol ends a line on the user's stderr: a terminal in raw mode needs the
// carriage return.
func eol(sess ssh.Session) string {
	if _, _, isPty := sess.Pty(); isPty {
		return "\r\n"
	}
	return "\n"
}

// agentForward is a forwarded agent: every agent connection the target
// opens is relayed to a new agent channel to the user's client, until
// stop, which the session's end calls.
type agentForward struct {
	m       *Module
	p       authn.Principal
	r       store.Resource
	live    *sessions.Live
	opened  time.Time
	uses    atomic.Int64
	bytes   atomic.Int64
	mu      sync.Mutex
	open    map[io.Closer]bool
	stopped bool
}

// startAgent forwards the agent when agentGate allowed it (fwd), telling
// the user when it could not; nil means no agent.
func (m *Module) startAgent(ctx context.Context, sess ssh.Session, fwd bool, c *gossh.Client, ts *gossh.Session, p authn.Principal, r store.Resource, live *sessions.Live) *agentForward {
	if !fwd {
		return nil
	}
	a, err := m.forwardAgent(ctx, sess, c, ts, p, r, live)
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "bastion: agent forwarding (ssh -A) to %s failed: %v; the session goes on without your agent%s", r.Name, err, eol(sess))
		return nil
	}
	return a
}

// forwardAgent starts forwarding the user's agent into ts on client c,
// once its agent.open event is durable.
func (m *Module) forwardAgent(ctx context.Context, sess ssh.Session, c *gossh.Client, ts *gossh.Session, p authn.Principal, r store.Resource, live *sessions.Live) (*agentForward, error) {
	user, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn)
	if !ok {
		return nil, fmt.Errorf("no connection to reach your agent on")
	}
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "agent.open", Target: r.Name, Decision: "allow",
		Details: map[string]string{"session": live.ID(), "relation": relForwardAgent, "source": p.SourceAddr}}); err != nil {
		return nil, fmt.Errorf("the audit log cannot record it now")
	}
	a := &agentForward{m: m, p: p, r: r, live: live, opened: time.Now(), open: map[io.Closer]bool{}}
	chans := c.HandleChannelOpen(agentChannel)
	if chans == nil {
		a.stop("agent channels already taken")
		return nil, fmt.Errorf("agent channels are already handled on this connection")
	}
	go func() {
		for nc := range chans {
			go a.relay(user, nc)
		}
	}()
	if err := agent.RequestAgentForwarding(ts); err != nil {
		a.stop("target refused")
		return nil, fmt.Errorf("%s refused it: %v", r.Name, err)
	}
	return a, nil
}

// relay carries one agent connection of the target to the user's agent.
func (a *agentForward) relay(user gossh.Conn, nc gossh.NewChannel) {
	a.mu.Lock()
	stopped := a.stopped
	a.mu.Unlock()
	if stopped {
		_ = nc.Reject(gossh.Prohibited, "the session ended")
		return
	}
	uch, ureqs, err := user.OpenChannel(agentChannel, nil)
	if err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, "the user's agent is not reachable")
		return
	}
	go gossh.DiscardRequests(ureqs)
	tch, treqs, err := nc.Accept()
	if err != nil {
		_ = uch.Close()
		return
	}
	go gossh.DiscardRequests(treqs)
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		_ = uch.Close()
		_ = tch.Close()
		return
	}
	a.open[uch], a.open[tch] = true, true
	a.mu.Unlock()
	a.uses.Add(1)
	var wg sync.WaitGroup
	wg.Add(2)
	pump := func(dst, src gossh.Channel, count func(int)) {
		defer wg.Done()
		n, _ := io.Copy(dst, src)
		a.bytes.Add(n)
		count(int(n)) // the session's bytes include its agent's
		_ = dst.CloseWrite()
	}
	go pump(uch, tch, a.live.CountOut) // the target's requests, to the user
	go pump(tch, uch, a.live.CountIn)  // the agent's answers, from the user
	wg.Wait()
	_ = uch.Close()
	_ = tch.Close()
	a.mu.Lock()
	delete(a.open, uch)
	delete(a.open, tch)
	a.mu.Unlock()
}

// stop ends the forwarding with the session: open agent connections are
// closed and no new one is relayed; agent.close records the uses.
func (a *agentForward) stop(reason string) {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.stopped = true
	open := a.open
	a.open = nil
	a.mu.Unlock()
	for c := range open {
		_ = c.Close()
	}
	e := store.Event{Actor: a.p.User, Action: "agent.close", Target: a.r.Name, Decision: "allow", Reason: reason,
		Details: map[string]string{"session": a.live.ID(), "uses": strconv.FormatInt(a.uses.Load(), 10),
			"bytes": strconv.FormatInt(a.bytes.Load(), 10), "duration": time.Since(a.opened).Round(time.Millisecond).String()}}
	if _, err := a.m.audit.Append(context.Background(), e); err != nil {
		subsystems.AuditLost(a.m.log, a.m.audit, e, err)
	}
}
