package hostshell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// Resources finds Resources by name and lists them.
type Resources interface {
	GetResource(ctx context.Context, name string) (store.Resource, error)
	ListResources(ctx context.Context) ([]store.Resource, error)
}

// Checker is the policy gate, and what the TUI lists from.
type Checker interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
	ListObjects(ctx context.Context, subject, relation, objectType string) ([]string, error)
}

// Auditor records audit events.
type Auditor interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
}

// Config of the module.
type Config struct {
	Host        string        // how users reach the bastion, for messages
	CertTTL     time.Duration // validity of each login certificate (default 5 m)
	DialTimeout time.Duration // default 10 s
	// Dialer connects to a host Resource (nil: a plain net.Dialer). The
	// bastion passes its address guard, so that the onward ssh of shells
	// and sftp never reaches what a Resource made over ssh may not.
	Dialer Dialer
	// Feed, when set, is the store's change feed: the TUIs follow it, so
	// an approval, a grant, a request or a session on any replica shows
	// without a key press. Without it, they poll.
	Feed store.Changes
	// StepUp, if set, checks the step-up requirements of host shells
	// (session kind ssh; nil: none).
	StepUp StepUp
}

// StepUp checks step-up requirements (stepup.Service); the TUI marks
// what needs one (Check) and runs one (Config, Remember).
type StepUp interface {
	Open(ctx context.Context, p authn.Principal, kind string, r store.Resource, what string) stepup.Verdict
	Check(ctx context.Context, p authn.Principal, kind string, r store.Resource) stepup.Decision
	Config() stepup.Config
	Remember(ctx context.Context, p authn.Principal, l stepup.Login) (until time.Time, perConn bool, err error)
}

// Dialer dials an address on behalf of a Resource (netguard.Guard).
type Dialer interface {
	DialResource(ctx context.Context, r store.Resource, network, address string) (net.Conn, error)
}

// Module serves shells and commands on ssh Resources.
type Module struct {
	cfg       Config
	resources Resources
	policy    Checker
	sessions  *sessions.Manager
	audit     Auditor
	ca        *CA
	hostKeys  store.Secrets
	records   store.Recordings
	log       *slog.Logger
	requests  Requests    // nil: access requests are off; see SetRequests
	pods      Pods        // nil: no kube workloads in the TUI; see SetPods
	login     StepUpLogin // nil: no step-up from the TUI; see SetStepUpLogin
	watchers  watchers    // the TUIs following Config.Feed
}

// New returns the module.
func New(cfg Config, res Resources, p Checker, sm *sessions.Manager, a Auditor, ca *CA, hostKeys store.Secrets, records store.Recordings, log *slog.Logger) *Module {
	if cfg.CertTTL <= 0 {
		cfg.CertTTL = 5 * time.Minute
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Host == "" {
		cfg.Host = "ssh bastion"
	}
	if log == nil {
		log = slog.Default()
	}
	return &Module{cfg: cfg, resources: res, policy: p, sessions: sm, audit: a, ca: ca, hostKeys: hostKeys, records: records, log: log,
		watchers: watchers{feed: cfg.Feed, log: log}}
}

// Register implements subsystems.Module.
func (m *Module) Register(t *subsystems.Table) error {
	if err := t.Shell(m.front); err != nil {
		return err
	}
	t.ForwardsAgent() // per Resource, with forward_agent (agent.go)
	return t.Target(m.serve)
}

func (m *Module) serve(ctx context.Context, sess ssh.Session, args []string) (int, bool) {
	r, err := m.resources.GetResource(ctx, args[0])
	if err != nil {
		return 0, false
	}
	p, _ := authn.FromContext(ctx)
	if ok, why := subsystems.CanView(subsystems.DecisionContext(ctx, subsystems.KindSSH), m.policy, p, r.Name); !ok {
		// Not this module's: the caller answers as for a name that is
		// no Resource (see CanView); the audit log says what was missing.
		m.recordRefusal(ctx, store.Event{Actor: p.User, Action: "shell.deny", Target: r.Name, Decision: "deny", Reason: why})
		return 0, false
	}
	return m.open(withAgentAsked(ctx), sess, sess, sessionTerm(sess), r, remoteCommand(ctx, sess, args)), true
}

// open checks the gate and runs remote (or a shell) on r.
func (m *Module) open(ctx context.Context, sess ssh.Session, in io.Reader, t term, r store.Resource, remote string) int {
	p, _ := authn.FromContext(ctx)
	errOut := sess.Stderr()
	if r.Kind != "ssh" {
		fmt.Fprintf(errOut, "bastion: %s is a %s Resource, not a host; reach it with `%s -N -L PORT:%s:PORT`\n", r.Name, r.Kind, m.cfg.Host, r.Name)
		return 1
	}
	dctx := subsystems.DecisionContext(ctx, subsystems.KindSSH) // what model conditions read
	ok, err := m.policy.Check(dctx, p.Subject(), "act", "resource:"+r.Name)
	if err != nil || !ok {
		why := fmt.Sprintf("%s lacks act on resource:%s", p.Subject(), r.Name) +
			subsystems.UnmetConditions(dctx, m.policy, p.Subject(), "act", "resource:"+r.Name)
		if err != nil {
			why = "the policy could not be evaluated (" + err.Error() + ")"
		}
		m.recordRefusal(ctx, store.Event{Actor: p.User, Action: "shell.deny", Target: r.Name, Decision: "deny", Reason: why})
		fmt.Fprintf(errOut, "bastion: shell on %s refused: %s. Ask for access with: %s request create %s --reason \"...\"\n",
			r.Name, why, m.cfg.Host, r.Name)
		return 1
	}
	return m.run(ctx, sess, in, t, p, r, r.LoginFor(p.User), remote)
}

// run logs in to r as login and runs remote (or a shell), with in as the
// user's input.
func (m *Module) run(ctx context.Context, sess ssh.Session, in io.Reader, t term, p authn.Principal, r store.Resource, login string, remote string) int {
	errOut := sess.Stderr()
	var su stepup.Verdict
	if m.cfg.StepUp != nil {
		// Every way to a host shell comes through here (ssh -t HOST, the
		// TUI), after act was checked: a recent strong login where one
		// is required.
		if su = m.cfg.StepUp.Open(ctx, p, "ssh", r, "shell on "+r.Name); !su.OK {
			m.recordRefusal(ctx, store.Event{Actor: p.User, Action: "shell.deny", Target: r.Name, Decision: "deny", Reason: su.Reason, Details: su.Details})
			fmt.Fprintf(errOut, "bastion: %s\n", su.Message)
			return 1
		}
	}
	var mu sync.Mutex
	var client *gossh.Client
	live, err := m.sessions.Open(ctx, sessions.Request{Principal: p, Resource: r, Kind: "shell", Target: login + "@" + r.Name, Recorded: true,
		StepUpUntil: su.Until, StepUpRenew: su.Renew,
		Closer: func(reason string) {
			mu.Lock()
			defer mu.Unlock()
			if client != nil {
				// A normal end says nothing: scripts read stderr. Only a
				// cut (kill, expiry, policy) is explained.
				if reason != sessions.ReasonClientClosed {
					fmt.Fprintf(errOut, "\r\nbastion: session on %s ended: %s\r\n", r.Name, reason)
				}
				client.Close()
			}
		}})
	if err != nil {
		fmt.Fprintf(errOut, "bastion: cannot open a session: %v\n", err)
		return 1
	}
	// ssh -A: the agent goes on only with forward_agent (agent.go).
	fwd := m.agentGate(ctx, sess, p, r)
	dctx := withRemote(ctx, remote)
	if fwd {
		dctx = withAgent(dctx)
	}
	c, err := m.DialHost(dctx, p, r, live.ID())
	if err != nil {
		m.sessions.End(live, "dial error")
		m.recordRefusal(ctx, store.Event{Actor: p.User, Action: "shell.fail", Target: r.Name, Decision: "allow", Reason: err.Error()})
		fmt.Fprintf(errOut, "bastion: %v\n", err)
		return 255
	}
	mu.Lock()
	client = c
	mu.Unlock()
	defer c.Close()
	ts, err := c.NewSession()
	if err != nil {
		m.sessions.End(live, "target refused the session")
		fmt.Fprintf(errOut, "bastion: %s refused a session: %v\n", r.Name, err)
		return 255
	}
	opened := time.Now()
	rec, err := m.startRecording(t, live.ID(), login+"@"+r.Name)
	if err != nil {
		// No recording, no session: every shell must be accounted for.
		m.sessions.End(live, "recording error")
		fmt.Fprintf(errOut, "bastion: cannot record the session: %v\n", err)
		return 255
	}
	// Nothing runs on the host before shell.open (which holds the command)
	// is durable.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "shell.open", Target: r.Name, Decision: "allow",
		Details: map[string]string{"login": login, "session": live.ID(), "recording": live.ID(), "command": remote, "source": p.SourceAddr}}); err != nil {
		m.sessions.End(live, "audit unavailable")
		_ = rec.Close()
		fmt.Fprintf(errOut, "bastion: shell on %s refused: the audit log cannot record it now; try again later\n", r.Name)
		return 255
	}
	if p.NoPTY {
		// The certificate withholds a pty: never ask the target for one,
		// even if the session somehow has one (the core refuses pty-req).
		t.isPty = false
	}
	agentFwd := m.startAgent(ctx, sess, fwd, c, ts, p, r, live) // nil: none
	code := m.pipe(sess, in, t, ts, remote, live, rec)
	if err := rec.Close(); err != nil {
		m.log.Error("closing a recording", "session", live.ID(), "err", err)
	}
	reason := m.sessions.End(live, sessions.ReasonClientClosed)
	if agentFwd != nil {
		agentFwd.stop(reason) // the agent ends with the session
	}
	s := live.Snapshot()
	closed := store.Event{Actor: p.User, Action: "shell.close", Target: r.Name, Decision: "allow",
		Reason: reason, Details: map[string]string{"session": s.ID, "exit": strconv.Itoa(code),
			"bytes_in": strconv.FormatInt(s.BytesIn, 10), "bytes_out": strconv.FormatInt(s.BytesOut, 10),
			"recording": s.ID, "duration": time.Since(opened).Round(time.Millisecond).String()}}
	if _, err := m.audit.Append(context.Background(), closed); err != nil {
		subsystems.AuditLost(m.log, m.audit, closed, err)
	}
	return code
}

// startRecording begins the asciicast of a session, stored with it.
func (m *Module) startRecording(t term, id, title string) (*audit.Recorder, error) {
	w, h := 80, 24
	env := map[string]string{}
	if t.isPty {
		w, h = t.pty.Window.Width, t.pty.Window.Height
		env["TERM"] = t.pty.Term
	}
	return audit.NewRecorder(w, h, env, title, func(chunk []byte) error {
		return m.records.AppendRecording(context.Background(), id, chunk)
	})
}

// pipe connects the user's session to the target's and returns the exit
// status the target reported.
func (m *Module) pipe(sess ssh.Session, in io.Reader, t term, ts *gossh.Session, remote string, live *sessions.Live, rec *audit.Recorder) int {
	if t.isPty {
		if err := ts.RequestPty(t.pty.Term, t.pty.Window.Height, t.pty.Window.Width, gossh.TerminalModes{}); err != nil {
			fmt.Fprintf(sess.Stderr(), "bastion: the target refused a terminal: %v\n", err)
			return 255
		}
		go func() {
			for w := range t.win {
				rec.Resize(w.Width, w.Height)
				_ = ts.WindowChange(w.Height, w.Width)
			}
		}()
	}
	sigs := make(chan ssh.Signal, 8)
	sess.Signals(sigs)
	defer sess.Signals(nil)
	go func() {
		for s := range sigs {
			_ = ts.Signal(gossh.Signal(s))
		}
	}()
	ts.Stdin = countingReader{in, live.CountIn}
	ts.Stdout = countingWriter{sess, live.CountOut, rec}
	ts.Stderr = countingWriter{sess.Stderr(), live.CountOut, rec}
	var err error
	if remote != "" {
		// The exec string goes to the target byte for byte, as sshd
		// passes it to the login shell: no splitting, no re-joining.
		err = ts.Start(remote)
	} else {
		err = ts.Shell()
	}
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "bastion: the target refused: %v\n", err)
		return 255
	}
	err = ts.Wait()
	var ee *gossh.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitStatus()
	}
	return 255
}

type countingReader struct {
	r     interface{ Read([]byte) (int, error) }
	count func(int)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.count(n)
	return n, err
}

// countingWriter passes output to the user, counting and recording it.
type countingWriter struct {
	w     interface{ Write([]byte) (int, error) }
	count func(int)
	rec   *audit.Recorder
}

func (c countingWriter) Write(p []byte) (int, error) {
	c.rec.Output(p)
	n, err := c.w.Write(p)
	c.count(n)
	return n, err
}

// DialHost logs in to the ssh Resource r for p with a fresh short-lived
// certificate from the bastion's user CA, tied to the session id. The
// caller must have checked the gate.
func (m *Module) DialHost(ctx context.Context, p authn.Principal, r store.Resource, sessionID string) (*gossh.Client, error) {
	login := r.LoginFor(p.User)
	signer, err := m.ca.Issue(p.User, login, sessionID, m.cfg.CertTTL, withAgentPermission(ctx, onwardPermissions(p, remoteOf(ctx))))
	if err != nil {
		return nil, fmt.Errorf("cannot issue a certificate: %v", err)
	}
	// The TCP connection goes through the Dialer, which checks the address
	// connected to after resolution (see Config.Dialer).
	dctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	var conn net.Conn
	if m.cfg.Dialer != nil {
		conn, err = m.cfg.Dialer.DialResource(dctx, r, "tcp", r.Address)
	} else {
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", r.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot log in to %s as %s: %v", r.Name, login, err)
	}
	cc, chans, reqs, err := gossh.NewClientConn(conn, r.Address, &gossh.ClientConfig{User: login, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: m.trustOnFirstUse(ctx, r.Name), Timeout: m.cfg.DialTimeout})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot log in to %s as %s: %v", r.Name, login, err)
	}
	return gossh.NewClient(cc, chans, reqs), nil
}

// trustOnFirstUse pins each target's host key the first time the bastion
// logs in, and refuses a changed key afterwards: without it, anyone who
// can redirect the target's address would receive the user's session.
func (m *Module) trustOnFirstUse(ctx context.Context, resource string) gossh.HostKeyCallback {
	name := "target-host-key/" + resource
	return func(_ string, _ net.Addr, key gossh.PublicKey) error {
		got := gossh.MarshalAuthorizedKey(key)
		pinned, err := m.hostKeys.GetSecret(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return m.hostKeys.PutSecret(ctx, name, got)
		}
		if err != nil {
			return err
		}
		if string(pinned) != string(got) {
			return fmt.Errorf("host key of %s changed (pinned %s, got %s); an admin must check the target and re-pin it",
				resource, strings.TrimSpace(string(pinned)), gossh.FingerprintSHA256(key))
		}
		return nil
	}
}

// recordRefusal audits a refusal or a failure; the refusal stands either
// way, and a lost event is logged and counted.
func (m *Module) recordRefusal(ctx context.Context, e store.Event) {
	if _, err := m.audit.Append(ctx, e); err != nil {
		subsystems.AuditLost(m.log, m.audit, e, err)
	}
}
