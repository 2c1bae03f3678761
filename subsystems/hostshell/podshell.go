package hostshell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/k8s"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/kube"
	"github.com/sshbastion/bastion/subsystems/sessions"
	"github.com/sshbastion/bastion/tui"
	"github.com/sshbastion/bastion/tui/termsafe"
)

// Pods is what the front door reaches of kube Resources' workloads, as
// the impersonated user (kube.Module).
type Pods interface {
	Workloads(ctx context.Context, p authn.Principal, name string, named []string) ([]kube.Namespace, error)
	PreparePodShell(ctx context.Context, p authn.Principal, name, ns, pod string) (*kube.PodShell, error)
	PodLogs(ctx context.Context, p authn.Principal, name, ns, pod string, tail int64) (io.ReadCloser, string, error)
}

// SetPods lets the TUI list kube workloads, open shells in pods and
// follow their logs. Call it before the server serves.
func (m *Module) SetPods(p Pods) { m.pods = p }

// logTail is how many past lines the logs start with.
const logTail = 200

var errNoPods = errors.New("this bastion lists no kube workloads")

// Workloads lists the workloads of a kube Resource for the TUI. The
// module gates it (act) and audits it; the cluster's RBAC decides what
// shows.
func (b *backend) Workloads(ctx context.Context, resource string, named []string) ([]tui.Namespace, error) {
	if b.m.pods == nil {
		return nil, errNoPods
	}
	list, err := b.m.pods.Workloads(ctx, b.p, resource, named)
	out := make([]tui.Namespace, 0, len(list))
	for _, ns := range list {
		n := tui.Namespace{Name: ns.Name, Forbidden: ns.Forbidden}
		for _, p := range ns.Pods {
			n.Pods = append(n.Pods, tui.Pod{Name: p.Name, Status: p.Status, Ready: p.Ready, Ports: p.Ports})
		}
		for _, s := range ns.Services {
			n.Services = append(n.Services, tui.Service{Name: s.Name, Type: s.Type, Ports: s.Ports, Forwardable: s.Forwardable})
		}
		out = append(out, n)
	}
	return out, err
}

// podShell opens a shell in the pod the TUI picked, as the impersonated
// user (pods/exec), with the session's terminal and window changes,
// recorded and audited like a host shell, inside a session that TTL,
// revocation and step-up expiry cut. A refusal is returned, for the TUI
// to show; nothing ran then.
func (m *Module) podShell(ctx context.Context, sess ssh.Session, in io.Reader, t term, p authn.Principal, ref tui.PodRef) (int, error) {
	errOut := sess.Stderr()
	if m.pods == nil {
		return 1, errNoPods
	}
	ps, err := m.pods.PreparePodShell(ctx, p, ref.Resource, ref.Namespace, ref.Name)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(sess, "\r\nbastion: shell in pod %s/%s (container %s) of %s as %s …\r\n", termsafe.String(ps.Namespace), termsafe.String(ps.Pod),
		termsafe.String(ps.Container), termsafe.String(ps.Resource.Name), termsafe.String(ps.AsUser))
	target := fmt.Sprintf("%s@%s/pods/%s/%s", ps.Container, ps.Resource.Name, ps.Namespace, ps.Pod)
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	live, err := m.sessions.Open(ctx, sessions.Request{Principal: p, Resource: ps.Resource, Kind: "shell", Target: target, Recorded: true,
		StepUpUntil: ps.StepUp.Until, StepUpRenew: ps.StepUp.Renew,
		Closer: func(reason string) {
			if reason != sessions.ReasonClientClosed {
				fmt.Fprintf(errOut, "\r\nbastion: shell in pod %s/%s ended: %s\r\n", ps.Namespace, ps.Pod, termsafe.String(reason))
			}
			cancel()
		}})
	if err != nil {
		return 1, fmt.Errorf("cannot open a session: %v", err)
	}
	rec, err := m.startRecording(t, live.ID(), target)
	if err != nil {
		// No recording, no session: every shell must be accounted for.
		m.sessions.End(live, "recording error")
		return 255, fmt.Errorf("cannot record the session: %v", err)
	}
	details := map[string]string{"session": live.ID(), "recording": live.ID(), "namespace": ps.Namespace, "pod": ps.Pod,
		"container": ps.Container, "as_user": ps.AsUser, "source": p.SourceAddr, "via": "tui"}
	// Nothing runs in the pod before shell.open is durable.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "shell.open", Target: ps.Resource.Name, Decision: "allow", Details: details}); err != nil {
		m.sessions.End(live, "audit unavailable")
		_ = rec.Close()
		return 255, fmt.Errorf("shell in pod %s/%s refused: the audit log cannot record it now; try again later", ps.Namespace, ps.Pod)
	}
	sizes := make(chan k8s.TermSize, 4)
	sizes <- k8s.TermSize{Width: t.pty.Window.Width, Height: t.pty.Window.Height}
	go func() {
		defer close(sizes)
		for w := range t.win {
			rec.Resize(w.Width, w.Height)
			select {
			case sizes <- k8s.TermSize{Width: w.Width, Height: w.Height}:
			default: // the kubelet has not read the last one: it gets the next
			}
		}
	}()
	opened := time.Now()
	code, rerr := ps.Run(ectx, k8s.ShellIO{In: countingReader{in, live.CountIn}, Out: countingWriter{sess, live.CountOut, rec}, Sizes: sizes})
	if rerr != nil && ectx.Err() == nil {
		fmt.Fprintf(errOut, "\r\nbastion: shell in pod %s/%s: %s\r\n", ps.Namespace, ps.Pod, termsafe.String(rerr.Error()))
		code = 255
	}
	if err := rec.Close(); err != nil {
		m.log.Error("closing a recording", "session", live.ID(), "err", err)
	}
	reason := m.sessions.End(live, sessions.ReasonClientClosed)
	s := live.Snapshot()
	cd := map[string]string{"session": s.ID, "exit": strconv.Itoa(code), "namespace": ps.Namespace, "pod": ps.Pod, "container": ps.Container,
		"bytes_in": strconv.FormatInt(s.BytesIn, 10), "bytes_out": strconv.FormatInt(s.BytesOut, 10),
		"recording": s.ID, "duration": time.Since(opened).Round(time.Millisecond).String()}
	if rerr != nil {
		cd["error"] = rerr.Error()
	}
	closed := store.Event{Actor: p.User, Action: "shell.close", Target: ps.Resource.Name, Decision: "allow", Reason: reason, Details: cd}
	if _, err := m.audit.Append(context.Background(), closed); err != nil {
		subsystems.AuditLost(m.log, m.audit, closed, err)
	}
	if reason != sessions.ReasonClientClosed {
		// Cut (kill, expiry, policy, step-up): the TUI says why, where
		// it stays visible.
		return code, fmt.Errorf("shell in pod %s/%s ended: %s", ps.Namespace, ps.Pod, reason)
	}
	return code, nil
}

// podLogs follows a pod's logs on the terminal until q, esc or ctrl-c.
// Every line is the cluster's (the application's) text: it is made safe
// before it reaches the terminal. A refusal is returned, for the TUI.
func (m *Module) podLogs(ctx context.Context, sess ssh.Session, in io.Reader, p authn.Principal, ref tui.PodRef) error {
	if m.pods == nil {
		return errNoPods
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, container, err := m.pods.PodLogs(lctx, p, ref.Resource, ref.Namespace, ref.Name, logTail)
	if err != nil {
		return err
	}
	defer rc.Close()
	fmt.Fprintf(sess, "\r\nbastion: logs of pod %s/%s (container %s) of %s, following; q or esc returns to the menu\r\n",
		termsafe.String(ref.Namespace), termsafe.String(ref.Name), termsafe.String(container), termsafe.String(ref.Resource))
	quit := make(chan struct{})
	go func() {
		defer close(quit)
		buf := make([]byte, 256)
		for {
			n, err := in.Read(buf)
			if isQuitKey(buf[:n]) || err != nil {
				cancel()
				_ = rc.Close() // ends a Read that waits for the next line
				return
			}
		}
	}()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if _, err := io.WriteString(sess, termsafe.Lines(strings.TrimRight(sc.Text(), "\r"))+"\r\n"); err != nil {
			return nil
		}
	}
	if lctx.Err() != nil {
		return nil // the user left
	}
	why := "the log ended"
	if err := sc.Err(); err != nil {
		why = "the log broke off: " + termsafe.String(err.Error())
	}
	fmt.Fprintf(sess, "\r\nbastion: %s; q or esc returns to the menu\r\n", why)
	<-quit
	return nil
}

// isQuitKey: q, esc alone (not an arrow key's sequence) or ctrl-c.
func isQuitKey(b []byte) bool {
	s := string(b)
	return s == "q" || s == "Q" || s == "\x1b" || strings.Contains(s, "\x03")
}
