package hostshell

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/tui"
)

// front serves `ssh bastion` without a command: the TUI with a PTY, a plain
// list without one. It loops: the TUI picks a host, the shell runs there,
// and `exit` on the host brings the user back to the TUI.
func (m *Module) front(ctx context.Context, sess ssh.Session, _ []string) int {
	p, _ := authn.FromContext(ctx)
	b := &backend{m: m, p: p}
	pty, winCh, isPty := sess.Pty()
	if !isPty {
		return m.plainList(ctx, sess, b)
	}
	// The TUI and the shells take turns on the session's input and window
	// changes; see inputMux.
	in := newInputMux(sess)
	wins := newWindows(pty, winCh)
	env := sess.Environ()
	if pty.Term != "" {
		env = append(env, "TERM="+pty.Term)
	}
	var back tui.Choice // where the user was, back from a pod
	notice := ""
	for {
		t := wins.take()
		r := in.take()
		resize := make(chan tui.Window, 1)
		go func() {
			defer close(resize)
			for w := range t.win {
				resize <- tui.Window{Width: w.Width, Height: w.Height}
			}
		}()
		choice, err := tui.Run(ctx, tui.Options{In: r, Out: sess, Width: t.pty.Window.Width, Height: t.pty.Window.Height,
			Resize: resize, Env: env, User: p.User, Host: m.cfg.Host, Backend: b,
			Expanded: back.Expanded, Named: back.Named, Selected: back.Pod, Notice: notice})
		notice = ""
		in.release(r)
		wins.release()
		for range resize {
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintf(sess.Stderr(), "bastion: the menu failed: %v\r\n", err)
			return 1
		}
		if choice.Pod.Name != "" {
			back = choice
			r = in.take()
			var err error
			if choice.Logs {
				err = m.podLogs(ctx, sess, r, p, choice.Pod)
			} else {
				var code int
				code, err = m.podShell(ctx, sess, r, wins.take(), p, choice.Pod)
				if err == nil && ctx.Err() == nil {
					fmt.Fprintf(sess, "\r\nbastion: left pod %s/%s (exit %d); back to the menu\r\n", choice.Pod.Namespace, choice.Pod.Name, code)
				}
			}
			in.release(r)
			wins.release()
			if ctx.Err() != nil {
				return 0
			}
			if err != nil {
				notice = err.Error() // drawn made safe by the TUI
			}
			continue
		}
		back = tui.Choice{}
		if choice.Open == "" {
			return 0
		}
		res, err := m.resources.GetResource(ctx, choice.Open)
		if err != nil {
			fmt.Fprintf(sess.Stderr(), "bastion: %s: %v\r\n", choice.Open, err)
			continue
		}
		fmt.Fprintf(sess, "\r\nbastion: connecting to %s …\r\n", res.Name)
		r = in.take()
		code := m.open(ctx, sess, r, wins.take(), res, "")
		in.release(r)
		wins.release()
		if ctx.Err() != nil {
			return code
		}
		fmt.Fprintf(sess, "\r\nbastion: left %s (exit %d); back to the menu\r\n", res.Name, code)
	}
}

// plainList is what `ssh -T bastion` prints: the Resources, and how to
// reach them, without a terminal to draw on.
func (m *Module) plainList(ctx context.Context, sess ssh.Session, b *backend) int {
	items, err := b.Resources(ctx)
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "bastion: cannot list your Resources: %v\n", err)
		return 1
	}
	fmt.Fprintf(sess, "Hello %s. Resources you may see (run `ssh -t` for the menu, `%s help` for commands):\n", b.p.User, m.cfg.Host)
	if len(items) == 0 {
		fmt.Fprintln(sess, "  (none yet)")
	}
	for _, it := range items {
		state := "reachable"
		if !it.Reachable {
			state = fmt.Sprintf("locked: %s request create %s --reason \"...\"", m.cfg.Host, it.Name)
		}
		fmt.Fprintf(sess, "  %-20s %-5s %-12s %s\n", it.Name, it.Kind, it.Project, state)
	}
	return 0
}

// backend is the TUI's view of the bastion for one Principal.
type backend struct {
	m *Module
	p authn.Principal
}

// Resources lists what the Principal may view; Reachable is the act
// relation, decided by the same policy as the gate that opens sessions.
func (b *backend) Resources(ctx context.Context) ([]tui.Item, error) {
	all, err := b.m.resources.ListResources(ctx)
	if err != nil {
		return nil, err
	}
	set := func(rel string) (map[string]bool, error) {
		dctx := subsystems.DecisionContextFor(ctx, b.p, subsystems.KindSSH, time.Now()) // what model conditions read
		ids, err := b.m.policy.ListObjects(dctx, b.p.Subject(), rel, "resource")
		if err != nil {
			return nil, err
		}
		out := make(map[string]bool, len(ids))
		for _, id := range ids {
			out[strings.TrimPrefix(id, "resource:")] = true
		}
		return out, nil
	}
	view, err := set("view")
	if err != nil {
		return nil, err
	}
	act, err := set("act")
	if err != nil {
		return nil, err
	}
	var items []tui.Item
	for _, r := range all {
		if !view[r.Name] && !act[r.Name] {
			continue // invisible: never shown, not even locked
		}
		it := tui.Item{Name: r.Name, Kind: r.Kind, Project: r.Project, Address: r.Address,
			Ports: r.Ports, Labels: r.Labels, Reachable: act[r.Name]}
		if it.Reachable {
			it.StepUp = b.stepUpNote(ctx, r)
		}
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items, nil
}

// Sessions lists the Principal's live sessions.
func (b *backend) Sessions(ctx context.Context) ([]tui.Session, error) {
	list, err := b.m.sessions.List(ctx, b.p.User, false)
	if err != nil {
		return nil, err
	}
	out := make([]tui.Session, 0, len(list))
	for _, s := range list {
		out = append(out, tui.Session{ID: s.ID, Kind: s.Kind, Resource: s.Resource, Target: s.Target,
			Opened: s.Opened, Expires: s.Expires, BytesIn: s.BytesIn, BytesOut: s.BytesOut})
	}
	return out, nil
}

// Kill ends one of the Principal's own sessions. Ending someone else's is
// an admin's revocation and goes through `sessions kill`, which checks it.
func (b *backend) Kill(ctx context.Context, id string) error {
	s, ok := b.m.sessions.Get(id)
	if !ok || s.User != b.p.User {
		return errors.New("no such live session of yours")
	}
	s, err := b.m.sessions.Kill(id)
	if err != nil {
		return err
	}
	_, err = b.m.audit.Append(ctx, store.Event{Actor: b.p.User, Action: "session.revoke", Target: s.Resource, Decision: "allow",
		Details: map[string]string{"session": s.ID, "user": s.User, "via": "tui"}})
	return err
}
