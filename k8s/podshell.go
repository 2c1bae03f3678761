package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport"
	utilexec "k8s.io/client-go/util/exec"
)

// TermSize is a terminal's size in cells.
type TermSize struct{ Width, Height int }

// ShellIO are the streams of an interactive exec: the user's terminal.
type ShellIO struct {
	In  io.Reader
	Out io.Writer // the PTY's output (stdout and stderr are one with a tty)
	// Sizes are the window changes, the first being the initial size;
	// closed when the terminal goes.
	Sizes <-chan TermSize
}

// DefaultContainer is the container kubectl exec picks: the one the
// kubectl.kubernetes.io/default-container annotation names, else the
// first.
func DefaultContainer(p *corev1.Pod) string {
	if c := p.Annotations["kubectl.kubernetes.io/default-container"]; c != "" {
		for _, k := range p.Spec.Containers {
			if k.Name == c {
				return c
			}
		}
	}
	if len(p.Spec.Containers) > 0 {
		return p.Spec.Containers[0].Name
	}
	return ""
}

// GetPod reads pod ns/name as id.
func (u *Upstream) GetPod(ctx context.Context, id Identity, ns, name string) (*corev1.Pod, error) {
	c, err := u.Core(id)
	if err != nil {
		return nil, err
	}
	return c.Pods(ns).Get(ctx, name, metav1.GetOptions{})
}

// ShellExec runs command in container of pod ns/name as id, with a
// terminal (pods/exec with tty), until it exits or ctx ends, and returns
// its exit status. It rides client-go's SPDY executor over the bastion's
// own dialer, TLS and credentials (the address guard of Resources made
// over ssh applies), as DialPortForward does.
func (u *Upstream) ShellExec(ctx context.Context, id Identity, ns, name, container string, command []string, s ShellIO) (int, error) {
	pu, err := u.podUpgradeFor(id, ns, name, "exec")
	if err != nil {
		return 0, err
	}
	loc := pu.loc
	q := url.Values{"container": {container}, "stdin": {"true"}, "stdout": {"true"}, "tty": {"true"}}
	q["command"] = command
	loc.RawQuery = q.Encode()
	ex, err := remotecommand.NewSPDYExecutorForTransports(pu.wrapped, pu.upgrader, http.MethodPost, &loc)
	if err != nil {
		return 0, err
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: s.In, Stdout: s.Out, Tty: true, TerminalSizeQueue: sizeQueue{s.Sizes}})
	var ce utilexec.CodeExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ce):
		return ce.ExitStatus(), nil
	}
	return 0, err
}

// sizeQueue is client-go's view of the window changes.
type sizeQueue struct{ c <-chan TermSize }

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	if q.c == nil {
		return nil
	}
	w, ok := <-q.c
	if !ok {
		return nil
	}
	return &remotecommand.TerminalSize{Width: uint16(w.Width), Height: uint16(w.Height)}
}

// FollowLogs streams the log of container of pod ns/name as id, from its
// last tail lines on, following until ctx ends. Unlike Core's client it
// has no overall timeout: a followed log is read for as long as the user
// watches.
func (u *Upstream) FollowLogs(ctx context.Context, id Identity, ns, name, container string, tail int64) (io.ReadCloser, error) {
	tc := *u.tc
	tc.Impersonate = transport.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	rt, err := transport.New(&tc)
	if err != nil {
		return nil, fmt.Errorf("kube transport: %w", err)
	}
	c, err := coreclient.NewForConfigAndClient(rest.CopyConfig(u.cfg), &http.Client{Transport: rt})
	if err != nil {
		return nil, err
	}
	return c.Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: container, Follow: true, TailLines: &tail}).Stream(ctx)
}
