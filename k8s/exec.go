package k8s

import (
	"context"
	"io"
	"net/http"
	"net/url"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"
)

// ExecOptions is one command run in a container, without a terminal.
type ExecOptions struct {
	Namespace, Pod, Container string
	Command                   []string
	Stdin                     io.Reader // nil: no stdin stream
	Stdout, Stderr            io.Writer
}

// Exec runs a command in a container through pods/exec as id, with
// client-go's remotecommand over SPDY and the bastion's own dialer (the
// address guard of Resources made over ssh applies, as for port-forward).
// A command that ran and exited non-zero returns an error with
// ExitStatus() (client-go's exec.CodeExitError); a command that could not
// start (no such executable) returns the kubelet's message.
func (u *Upstream) Exec(ctx context.Context, id Identity, o ExecOptions) error {
	pu, err := u.podUpgradeFor(id, o.Namespace, o.Pod, "exec")
	if err != nil {
		return err
	}
	q := url.Values{}
	q.Set("container", o.Container)
	for _, c := range o.Command {
		q.Add("command", c)
	}
	q.Set("stdout", "true")
	q.Set("stderr", "true")
	if o.Stdin != nil {
		q.Set("stdin", "true")
	}
	loc := pu.loc
	loc.RawQuery = q.Encode()
	ex, err := remotecommand.NewSPDYExecutorForTransports(pu.wrapped, pu.upgrader, http.MethodPost, &loc)
	if err != nil {
		return err
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: stderr})
}

// PodContainers returns the containers of pod ns/name as id sees it (get
// pods), the regular ones first, then running ephemeral ones.
func (u *Upstream) PodContainers(ctx context.Context, id Identity, ns, name string) ([]string, error) {
	core, err := u.Core(id)
	if err != nil {
		return nil, err
	}
	pod, err := core.Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range pod.Spec.Containers {
		out = append(out, c.Name)
	}
	running := map[string]bool{}
	for _, s := range pod.Status.EphemeralContainerStatuses {
		running[s.Name] = s.State.Running != nil
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if running[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out, nil
}
