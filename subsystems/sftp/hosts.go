package sftp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// fs is one sftp channel: the user, and the onward connections it opened.
type fs struct {
	ctx  context.Context
	m    *Module
	p    authn.Principal
	sess ssh.Session

	mu           sync.Mutex
	hosts        map[string]*host
	closed       bool
	closeChannel func()

	mu2  sync.Mutex // guards said
	said map[string]bool
}

// host is one onward SFTP connection, inside its own session.
type host struct {
	r      store.Resource
	login  string
	client *gossh.Client // nil for a kube Resource's pods
	sftp   tree
	live   *sessions.Live
}

func newFS(ctx context.Context, m *Module, p authn.Principal, sess ssh.Session) *fs {
	return &fs{ctx: ctx, m: m, p: p, sess: sess, hosts: map[string]*host{}}
}

// denied is what a refused path returns: SSH_FX_PERMISSION_DENIED, with
// the reason and how to get access in the message.
func (f *fs) denied(resource, why string) error {
	f.m.cfg.Metrics.refused()
	// A refusal is already the safe outcome; a lost deny event is counted.
	if _, err := f.m.audit.Append(f.ctx, store.Event{Actor: f.p.User, Action: "sftp.deny", Target: resource, Decision: "deny", Reason: why}); err != nil {
		f.m.lost(store.Event{Actor: f.p.User, Action: "sftp.deny"}, err)
	}
	msg := fmt.Sprintf("%s; ask with: %s request create %s --reason \"...\"", why, f.m.cfg.Host, resource)
	// sftp and scp show only a status code; the reason goes to stderr,
	// which they print.
	f.say("bastion: /" + resource + " refused: " + msg)
	return fmt.Errorf("%s: %w", msg, sftp.ErrSSHFxPermissionDenied)
}

// reachable reports whether the user may act on resource now. Every use
// of a Resource asks again, so that a grant removed while the channel is
// open stops the next operation even before the session sweeper cuts it.
func (f *fs) reachable(resource string) (bool, error) {
	return f.m.policy.Check(f.decision(), f.p.Subject(), "act", "resource:"+resource)
}

// decision is the context of a policy decision now: it carries what
// model conditions read (source_ip, current_time, session_kind sftp, ...).
func (f *fs) decision() context.Context {
	return subsystems.DecisionContextFor(f.ctx, f.p, subsystems.KindSFTP, time.Now())
}

// host returns the onward connection to resource, opening it (gate,
// session, certificate, login, sftp) on first use.
func (f *fs) host(resource string) (*host, error) {
	ok, err := f.reachable(resource)
	if err != nil {
		// Fail closed: an unanswerable policy is a refusal.
		return nil, f.denied(resource, "the policy could not be evaluated ("+err.Error()+")")
	}
	if !ok {
		return nil, f.denied(resource, fmt.Sprintf("%s lacks act on resource:%s", f.p.Subject(), resource)+
			subsystems.UnmetConditions(f.decision(), f.m.policy, f.p.Subject(), "act", "resource:"+resource))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, sftp.ErrSSHFxConnectionLost
	}
	if h := f.hosts[resource]; h != nil {
		return h, nil
	}
	r, err := f.m.resources.GetResource(f.ctx, resource)
	if err != nil {
		return nil, os.ErrNotExist
	}
	if r.Kind != "ssh" && !(r.Kind == "kube" && f.m.cfg.Pods != nil) {
		return nil, fmt.Errorf("%s is a %s Resource, not a host with files: %w", r.Name, r.Kind, sftp.ErrSSHFxNoSuchFile)
	}
	var su stepup.Verdict
	if f.m.cfg.StepUp != nil {
		// A recent strong login where one is required, checked when the
		// host opens (act was checked above).
		if su = f.m.cfg.StepUp.Open(f.ctx, f.p, "sftp", r, "/"+resource); !su.OK {
			f.m.cfg.Metrics.refused()
			ev := store.Event{Actor: f.p.User, Action: "sftp.deny", Target: resource, Decision: "deny", Reason: su.Reason, Details: su.Details}
			if _, err := f.m.audit.Append(f.ctx, ev); err != nil {
				f.m.lost(store.Event{Actor: f.p.User, Action: "sftp.deny"}, err)
			}
			f.say("bastion: " + su.Message)
			return nil, fmt.Errorf("%s: %w", su.Message, sftp.ErrSSHFxPermissionDenied)
		}
	}
	h := &host{r: r}
	var dialed bool
	// The Closer cuts the channel only once the host is in use: ending the
	// session of a failed dial (below, with f.mu held) must not.
	var up atomic.Bool
	live, err := f.m.sessions.Open(f.ctx, sessions.Request{Principal: f.p, Resource: r, Kind: "sftp",
		StepUpUntil: su.Until, StepUpRenew: su.Renew,
		Target: r.Name, Closer: func(reason string) {
			if up.Load() {
				f.cut(resource, reason)
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("cannot open a session on %s: %v: %w", resource, err, sftp.ErrSSHFxFailure)
	}
	defer func() {
		if !dialed {
			f.m.sessions.End(live, "dial error")
		}
	}()
	if r.Kind == "kube" {
		// A kube Resource's pods: no onward login, each operation runs
		// through pods/exec as the impersonated user (pods.go).
		pt, err := f.openPods(r, live)
		if err != nil {
			return nil, err
		}
		dialed = true
		h.sftp, h.live, h.login = pt, live, pt.asUser
		f.hosts[resource] = h
		up.Store(true)
		return h, nil
	}
	c, err := f.m.dialer.DialHost(f.ctx, f.p, r, live.ID())
	if err != nil {
		if _, aerr := f.m.audit.Append(f.ctx, store.Event{Actor: f.p.User, Action: "sftp.fail", Target: resource, Decision: "allow", Reason: err.Error()}); aerr != nil {
			f.m.lost(store.Event{Actor: f.p.User, Action: "sftp.fail"}, aerr)
		}
		f.say("bastion: " + err.Error())
		return nil, fmt.Errorf("%v: %w", err, sftp.ErrSSHFxNoConnection)
	}
	sc, err := sftp.NewClient(c)
	if err != nil {
		c.Close()
		f.say(fmt.Sprintf("bastion: %s has no sftp server (%v)", resource, err))
		return nil, fmt.Errorf("%s has no sftp server: %v: %w", resource, err, sftp.ErrSSHFxNoConnection)
	}
	// The host is used only once its sftp.open event is durable.
	if _, err := f.m.audit.Append(f.ctx, store.Event{Actor: f.p.User, Action: "sftp.open", Target: resource, Decision: "allow",
		Details: map[string]string{"session": live.ID(), "login": c.User(), "source": f.p.SourceAddr}}); err != nil {
		f.m.lost(store.Event{Actor: f.p.User, Action: "sftp.open"}, err)
		_ = sc.Close()
		_ = c.Close()
		f.say("bastion: the audit log cannot record a session on " + resource + " now; refused")
		return nil, fmt.Errorf("the audit log cannot record this session: %w", sftp.ErrSSHFxFailure)
	}
	dialed = true
	h.client, h.sftp, h.live, h.login = c, sftpTree{sc}, live, c.User()
	f.hosts[resource] = h
	up.Store(true)
	return h, nil
}

// say tells the user something on stderr, once per message and channel.
func (f *fs) say(msg string) {
	f.mu2.Lock()
	defer f.mu2.Unlock()
	if f.said == nil {
		f.said = map[string]bool{}
	}
	if f.said[msg] {
		return
	}
	f.said[msg] = true
	fmt.Fprintln(f.sess.Stderr(), msg)
}

// cut ends the whole channel when one of its sessions ends (TTL, idle,
// revocation, policy change): a cut must not be undone by reopening.
func (f *fs) cut(resource, reason string) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	fmt.Fprintf(f.sess.Stderr(), "bastion: sftp session on %s ended: %s\n", resource, reason)
	if f.closeChannel != nil {
		f.closeChannel()
	}
	go f.closeAll(reason)
}

// closeAll closes every onward connection and ends its session.
func (f *fs) closeAll(reason string) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	hosts := f.hosts
	f.hosts = nil
	f.mu.Unlock()
	for name, h := range hosts {
		_ = h.sftp.Close()
		if h.client != nil {
			_ = h.client.Close()
		}
		why := f.m.sessions.End(h.live, reason)
		s := h.live.Snapshot()
		if _, err := f.m.audit.Append(context.Background(), store.Event{Actor: f.p.User, Action: "sftp.close", Target: name, Decision: "allow",
			Reason: why, Details: map[string]string{"session": s.ID, "bytes_in": strconv.FormatInt(s.BytesIn, 10), "bytes_out": strconv.FormatInt(s.BytesOut, 10)}}); err != nil {
			f.m.lost(store.Event{Actor: f.p.User, Action: "sftp.close"}, err)
		}
	}
}

// remoteErr turns an onward error into the status the client should see.
func remoteErr(err error) error {
	var se *sftp.StatusError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return os.ErrNotExist
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("permission denied on the host: %w", sftp.ErrSSHFxPermissionDenied)
	case errors.As(err, &se):
		// Keep the host's status code (e.g. failure, unsupported).
		return fmt.Errorf("%s: %w", se.Error(), se.FxCode())
	}
	return err
}
