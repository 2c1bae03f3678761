package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/netguard"
	"github.com/sshbastion/bastion/subsystems/reasons"
	"github.com/sshbastion/bastion/subsystems/sessions"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// Resources finds Resources by name or alias.
type Resources interface {
	GetResource(ctx context.Context, name string) (store.Resource, error)
	ListResources(ctx context.Context) ([]store.Resource, error)
}

// Checker is the policy gate.
type Checker interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
}

// Auditor records audit events.
type Auditor interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
}

// Config of the forward module.
type Config struct {
	DialTimeout time.Duration // default 10 s
	// Host is how users reach the bastion, for the hints in refusals.
	Host string
	// Kube serves channels to kube Resources once this module has gated
	// them (nil: such channels are refused).
	Kube KubeTunnel
	// Dialer connects to a Resource's address (nil: a plain net.Dialer).
	// The bastion passes its address guard, which refuses, at connect
	// time, the places a Resource made over ssh may not reach.
	Dialer Dialer
	// Metrics, if set, counts forwards and their bytes (nil: nothing).
	Metrics *Metrics
	// StepUp, if set, checks the step-up requirements of each forward
	// (nil: none).
	StepUp StepUp
}

// StepUp checks step-up requirements (stepup.Service).
type StepUp interface {
	Open(ctx context.Context, p authn.Principal, kind string, r store.Resource, what string) stepup.Verdict
}

// Dialer dials an address on behalf of a Resource (netguard.Guard).
type Dialer interface {
	DialResource(ctx context.Context, r store.Resource, network, address string) (net.Conn, error)
}

// KubeTunnel serves an accepted-by-policy channel to a kube Resource.
type KubeTunnel interface {
	ServeTunnel(ctx context.Context, p authn.Principal, r store.Resource, target string, nc gossh.NewChannel)
	// ServeWorkload serves `-L PORT:RES/pods/NS/NAME:PORT` (path is what
	// follows "RES/"), whose act was checked; the cluster's RBAC is its
	// own second gate.
	ServeWorkload(ctx context.Context, p authn.Principal, r store.Resource, target, path string, port int, nc gossh.NewChannel)
}

// Module serves direct-tcpip channels (ssh -L, -W, -J) to Resources.
type Module struct {
	cfg       Config
	resources Resources
	policy    Checker
	sessions  *sessions.Manager
	audit     Auditor
	log       *slog.Logger
}

// New returns the forward module.
func New(cfg Config, res Resources, p Checker, sm *sessions.Manager, a Auditor, log *slog.Logger) *Module {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Host == "" {
		cfg.Host = "ssh bastion"
	}
	if log == nil {
		log = slog.Default()
	}
	return &Module{cfg: cfg, resources: res, policy: p, sessions: sm, audit: a, log: log}
}

// Register implements subsystems.Module.
func (m *Module) Register(t *subsystems.Table) error {
	return t.Channel("direct-tcpip", m.serve)
}

// directTCPIP is the RFC 4254 7.2 payload.
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

func (m *Module) serve(ctx context.Context, _ *gossh.ServerConn, nc gossh.NewChannel) {
	p, _ := authn.FromContext(ctx)
	var req directTCPIP
	if err := gossh.Unmarshal(nc.ExtraData(), &req); err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	target := net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port)))
	// deny refuses with msg; the event's reason is msg unless ev says
	// what the client must not be told.
	deny := func(msg string, ev store.Event) {
		ev.Actor, ev.Action, ev.Decision = p.User, "forward.deny", "deny"
		if ev.Reason == "" {
			ev.Reason = msg
		}
		if ev.Details == nil {
			ev.Details = map[string]string{}
		}
		ev.Details["target"], ev.Details["source"], ev.Details["conn"] = target, p.SourceAddr, p.SessionID
		m.recordRefusal(ctx, ev)
		m.cfg.Metrics.result("refused")
		_ = nc.Reject(gossh.Prohibited, msg)
	}
	if p.NoPortForwarding {
		// The certificate this user logged in with withholds
		// permit-port-forwarding; its CA decided, as sshd would honour.
		deny(fmt.Sprintf("forward to %s refused: your certificate (serial %d) does not permit port forwarding", target, p.CertSerial),
			store.Event{Reason: "certificate without permit-port-forwarding", Details: code(reasons.CertRestricted)})
		return
	}
	notResource := fmt.Sprintf("forward to %s refused: %q is not a Resource; the bastion forwards only to named Resources (list them with `%s resources list`)",
		target, req.Host, m.cfg.Host)
	name, workload := splitWorkload(req.Host)
	r, err := m.lookup(ctx, name)
	if err == nil && workload != "" && r.Kind != "kube" {
		err = store.ErrNotFound // only kube Resources have workloads below them
	}
	if err != nil {
		// Only named Resources are reachable: anything else (raw IPs,
		// localhost, the bastion's own ports) is refused, so the bastion
		// can never be used as an open proxy.
		deny(notResource, store.Event{Details: code(reasons.NotAResource)})
		return
	}
	// Every decision about this forward reads its request context
	// (source_ip, current_time, ...): model conditions depend on it.
	dctx := subsystems.DecisionContext(ctx, subsystems.ForwardKind(r.Kind))
	if ok, why := subsystems.CanView(dctx, m.policy, p, r.Name); !ok {
		// Read like a name that does not exist (see CanView); the audit
		// log says what was missing.
		deny(notResource, store.Event{Target: r.Name, Reason: why, Details: code(reasons.NotAResource)})
		return
	}
	if r.Kind == "kube" && m.cfg.Kube == nil {
		deny(fmt.Sprintf("forward to %s refused: %s is a kube Resource and this bastion serves no kube tunnels", target, r.Name),
			store.Event{Target: r.Name})
		return
	}
	dial, ok := dialAddress(r, int(req.Port))
	if r.Kind == "kube" {
		// The tunnel ends in the bastion itself, as HTTPS on "port 443"
		// (or the Resource's listed ports); the apiserver's own address is
		// never dialled from the user's request.
		ok = req.Port == 443 || slices.Contains(r.Ports, int(req.Port))
		if workload != "" {
			// A pod's port: the cluster's RBAC on pods/portforward
			// decides, in ServeWorkload.
			ok = req.Port > 0 && req.Port < 65536
		}
		if !ok {
			r.Ports = append([]int{443}, r.Ports...)
		}
	}
	if !ok {
		deny(fmt.Sprintf("forward to %s refused: port %d is not allowed on %s (allowed: %s)", target, req.Port, r.Name, portList(r)),
			store.Event{Target: r.Name, Details: code(reasons.PortNotAllowed)})
		return
	}
	allowed, err := m.policy.Check(dctx, p.Subject(), "act", "resource:"+r.Name)
	if err != nil || !allowed {
		why, rc := fmt.Sprintf("%s lacks act on resource:%s", p.Subject(), r.Name)+
			subsystems.UnmetConditions(dctx, m.policy, p.Subject(), "act", "resource:"+r.Name), reasons.ReBACDenied
		if err != nil {
			// Fail closed: an unanswerable policy question is a refusal.
			why, rc = "the policy could not be evaluated ("+err.Error()+")", reasons.PolicyError
		}
		deny(fmt.Sprintf("forward to %s refused: %s. Ask for access with: %s request create %s --reason \"...\"",
			target, why, m.cfg.Host, r.Name), store.Event{Target: r.Name, Details: code(rc)})
		return
	}
	var su stepup.Verdict
	if m.cfg.StepUp != nil {
		// A recent strong login, where the config or the Resource asks
		// for one: checked only once act holds, so that the refusal
		// tells nothing to those who could not open the session anyway.
		if su = m.cfg.StepUp.Open(ctx, p, stepup.KindOf(r), r, "forward to "+target); !su.OK {
			deny(su.Message, store.Event{Target: r.Name, Reason: su.Reason, Details: su.Details})
			return
		}
	}
	if r.Kind == "kube" && workload != "" {
		m.cfg.Kube.ServeWorkload(ctx, p, r, target, workload, int(req.Port), nc)
		return
	}
	if r.Kind == "kube" {
		m.cfg.Kube.ServeTunnel(ctx, p, r, target, nc)
		return
	}
	m.serveTCP(ctx, p, r, target, dial, nc, su)
}

func (m *Module) serveTCP(ctx context.Context, p authn.Principal, r store.Resource, target, dial string, nc gossh.NewChannel, su stepup.Verdict) {
	dctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	conn, err := m.dial(dctx, r, dial)
	if err != nil {
		cause := dialCause(err, m.cfg.DialTimeout)
		m.recordRefusal(ctx, store.Event{Actor: p.User, Action: "forward.fail", Target: r.Name, Decision: "allow",
			Reason: "dial error: " + cause, Details: map[string]string{"target": target, "source": p.SourceAddr}})
		m.cfg.Metrics.result("dial_error")
		_ = nc.Reject(gossh.ConnectionFailed, fmt.Sprintf("forward to %s: cannot reach %s: %s", target, r.Name, cause))
		return
	}
	var once sync.Once
	var ch gossh.Channel
	closeAll := func(string) {
		once.Do(func() {
			conn.Close()
			if ch != nil {
				ch.Close()
			}
		})
	}
	live, err := m.sessions.Open(ctx, sessions.Request{Principal: p, Resource: r, Kind: "forward", Target: target, Closer: closeAll,
		StepUpUntil: su.Until, StepUpRenew: su.Renew})
	if err != nil {
		conn.Close()
		m.cfg.Metrics.result("unavailable")
		_ = nc.Reject(gossh.ResourceShortage, "cannot open a session: "+err.Error())
		return
	}
	// No bytes flow before forward.open is durable: a forward the audit
	// log does not know of must not exist.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "forward.open", Target: r.Name, Decision: "allow",
		Details: map[string]string{"target": target, "dial": dial, "source": p.SourceAddr, "session": live.ID(), "conn": p.SessionID}}); err != nil {
		m.sessions.End(live, "audit unavailable")
		conn.Close()
		m.cfg.Metrics.result("unavailable")
		_ = nc.Reject(gossh.ResourceShortage, "bastion: the audit log cannot record this forward now; try again later")
		return
	}
	c, reqs, err := nc.Accept()
	if err != nil {
		m.sessions.End(live, sessions.ReasonClientClosed)
		conn.Close()
		return
	}
	ch = c
	go gossh.DiscardRequests(reqs)
	opened := time.Now()
	done := m.cfg.Metrics.open()
	up, down := m.cfg.Metrics.counters(live.CountIn, live.CountOut)
	reason := pump(ch, conn, up, down)
	done()
	reason = m.sessions.End(live, reason)
	closeAll(reason)
	s := live.Snapshot()
	closed := store.Event{Actor: p.User, Action: "forward.close", Target: r.Name, Decision: "allow",
		Reason: reason, Details: map[string]string{"session": s.ID, "target": target,
			"bytes_in": strconv.FormatInt(s.BytesIn, 10), "bytes_out": strconv.FormatInt(s.BytesOut, 10),
			"duration": time.Since(opened).Round(time.Millisecond).String()}}
	if code := reasons.OfSessionEnd(reason); code != "" {
		closed.Details[reasons.DetailKey] = code
	}
	if _, err := m.audit.Append(context.Background(), closed); err != nil {
		subsystems.AuditLost(m.log, m.audit, closed, err)
	}
}

// code is the details of an event with a stable reason code.
func code(c string) map[string]string { return map[string]string{reasons.DetailKey: c} }

// lookup resolves a name or alias to a Resource.
func (m *Module) lookup(ctx context.Context, name string) (store.Resource, error) {
	r, err := m.resources.GetResource(ctx, name)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return r, err
	}
	all, err := m.resources.ListResources(ctx)
	if err != nil {
		return store.Resource{}, err
	}
	for _, r := range all {
		for _, a := range r.Aliases {
			if a == name {
				return r, nil
			}
		}
	}
	return store.Resource{}, store.ErrNotFound
}

func dialCause(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var refused *netguard.Refusal
	switch {
	case errors.As(err, &refused):
		// The address guard refused the address connected to.
		return refused.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return fmt.Sprintf("timed out after %s", timeout)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host " + dnsErr.Name
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	}
	return err.Error()
}

// recordRefusal audits a refusal; the refusal stands either way, and a lost
// event is logged and counted.
func (m *Module) recordRefusal(ctx context.Context, e store.Event) {
	if _, err := m.audit.Append(ctx, e); err != nil {
		subsystems.AuditLost(m.log, m.audit, e, err)
	}
}
