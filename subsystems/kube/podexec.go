package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/k8s"
	"github.com/sshbastion/bastion/store"
)

// The methods below reach the containers of a kube Resource as the
// impersonated user, for the sftp tree /NAME/NS/POD/CONTAINER/... (the
// sftp module declares the interface and checks act on the Resource; the
// cluster's RBAC is the second gate, asked here). Errors wrap
// os.ErrPermission for a refusal of the cluster's RBAC, with a message
// that says so and what to ask for, and os.ErrNotExist for what is not
// there (or not a valid name).

// podTarget is the cluster side of one call: the apiserver and who the
// user is there.
func (m *Module) podTarget(p authn.Principal, r store.Resource) (*k8s.Upstream, k8s.Identity, error) {
	if r.Kind != "kube" {
		return nil, k8s.Identity{}, fmt.Errorf("%s is not a kube Resource", r.Name)
	}
	up, err := m.upstream(r)
	if err != nil {
		return nil, k8s.Identity{}, fmt.Errorf("%s cannot be reached: %v; an admin must fix the Resource", r.Name, err)
	}
	id, err := m.identity(p, r)
	if err != nil {
		return nil, k8s.Identity{}, fmt.Errorf("the groups for %s on %s could not be evaluated (%v); try again", p.User, r.Name, err)
	}
	return up, id, nil
}

// PodUser is the user the apiserver of r sees for p (for the audit log),
// and checks that r can be reached at all.
func (m *Module) PodUser(_ context.Context, p authn.Principal, r store.Resource) (string, error) {
	_, id, err := m.podTarget(p, r)
	return id.User, err
}

// PodNamespaces lists the namespaces of r as the user.
func (m *Module) PodNamespaces(ctx context.Context, p authn.Principal, r store.Resource) ([]string, error) {
	up, id, err := m.podTarget(p, r)
	if err != nil {
		return nil, err
	}
	core, err := up.Core(id)
	if err != nil {
		return nil, err
	}
	l, err := core.Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, m.podErr(r, id, err, "list namespaces", "", fmt.Sprintf("you can still open /%s/NAMESPACE directly", r.Name))
	}
	out := make([]string, 0, len(l.Items))
	for _, n := range l.Items {
		out = append(out, n.Name)
	}
	sort.Strings(out)
	return out, nil
}

// PodNames lists the pods of namespace ns of r as the user.
func (m *Module) PodNames(ctx context.Context, p authn.Principal, r store.Resource, ns string) ([]string, error) {
	if err := validNames(ns, "", ""); err != nil {
		return nil, err
	}
	up, id, err := m.podTarget(p, r)
	if err != nil {
		return nil, err
	}
	core, err := up.Core(id)
	if err != nil {
		return nil, err
	}
	l, err := core.Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, m.podErr(r, id, err, "list pods", ns, "")
	}
	out := make([]string, 0, len(l.Items))
	for _, p := range l.Items {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out, nil
}

// PodContainerNames lists the containers of pod ns/pod of r (get pods).
func (m *Module) PodContainerNames(ctx context.Context, p authn.Principal, r store.Resource, ns, pod string) ([]string, error) {
	if err := validNames(ns, pod, ""); err != nil {
		return nil, err
	}
	up, id, err := m.podTarget(p, r)
	if err != nil {
		return nil, err
	}
	cs, err := up.PodContainers(ctx, id, ns, pod)
	if err != nil {
		return nil, m.podErr(r, id, err, "get pods", ns, "")
	}
	return cs, nil
}

// PodAccess asks the cluster's RBAC, with SelfSubjectAccessReviews as the
// user, for what reaching a container's files needs: get on the pod and
// create on its exec subresource. Asked before the first exec so that a
// refusal names exactly what is missing.
func (m *Module) PodAccess(ctx context.Context, p authn.Principal, r store.Resource, ns, pod string) error {
	if err := validNames(ns, pod, ""); err != nil {
		return err
	}
	up, id, err := m.podTarget(p, r)
	if err != nil {
		return err
	}
	d, err := up.FirstDenied(ctx, id,
		authzv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods", Name: pod},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "exec", Name: pod})
	if err != nil {
		return fmt.Errorf("the Kubernetes RBAC of %s could not be asked (%v); try again", r.Name, err)
	}
	if d != nil {
		return fmt.Errorf("refused by the Kubernetes RBAC of %s, not by the bastion (you have act on resource:%s): user %q (groups %s) may not %s %s %q in namespace %s%s. "+
			"Files in pods need get on pods and create on pods/exec; ask a cluster admin of %s for them (e.g. kubectl -n %s create role files --verb=get,list,create --resource=pods,pods/exec; "+
			"kubectl -n %s create rolebinding files --role=files --user=%s): %w",
			r.Name, r.Name, id.User, groupList(id), d.Attrs.Verb, d.Resource(), pod, ns, d.Because(), r.Name, ns, ns, id.User, os.ErrPermission)
	}
	return nil
}

// PodExec runs argv in container of pod ns/pod of r as the user, with
// stdin (nil: none) and stdout; the command's stderr is kept (a little)
// for the error. A non-zero exit returns an error with ExitStatus().
func (m *Module) PodExec(ctx context.Context, p authn.Principal, r store.Resource, ns, pod, container string, argv []string, stdin io.Reader, stdout io.Writer) error {
	if err := validNames(ns, pod, container); err != nil {
		return err
	}
	up, id, err := m.podTarget(p, r)
	if err != nil {
		return err
	}
	var stderr limitedBuffer
	err = up.Exec(ctx, id, k8s.ExecOptions{Namespace: ns, Pod: pod, Container: container, Command: argv, Stdin: stdin, Stdout: stdout, Stderr: &stderr})
	var exit interface{ ExitStatus() int }
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return execExit{code: exit.ExitStatus(), stderr: strings.TrimSpace(stderr.String())}
	case noExecutable(err):
		// A distroless image: nothing to run the file operations with.
		return fmt.Errorf("container %s of pod %s/%s has no %s: the bastion reaches a container's files with sh, cat and stat run in it, as kubectl cp needs tar, "+
			"and this image (distroless?) has none. Use an image with a shell, add one with kubectl debug, or copy through a volume", container, ns, pod, argv[0])
	}
	return m.podErr(r, id, err, "create pods/exec", ns, "")
}

// execExit is a command that ran in the container and exited non-zero.
type execExit struct {
	code   int
	stderr string
}

func (e execExit) Error() string {
	if e.stderr != "" {
		return fmt.Sprintf("exit %d: %s", e.code, e.stderr)
	}
	return fmt.Sprintf("exit %d", e.code)
}

// ExitStatus is the command's exit code.
func (e execExit) ExitStatus() int { return e.code }

// noExecutable: the runtime could not start the command at all.
func noExecutable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "executable file not found") || strings.Contains(s, "no such file or directory") && strings.Contains(s, "exec")
}

// podErr words an apiserver error: a 403 is the cluster's RBAC (what was
// needed), a 404 not there.
func (m *Module) podErr(r store.Resource, id k8s.Identity, err error, needed, ns, hint string) error {
	where := ""
	if ns != "" {
		where = " in namespace " + ns
	}
	if hint != "" {
		hint = "; " + hint
	}
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("refused by the Kubernetes RBAC of %s, not by the bastion: user %q (groups %s) may not %s%s%s. Ask a cluster admin of %s for a Role granting it, bound to user %q: %w",
			r.Name, id.User, groupList(id), needed, where, hint, r.Name, id.User, os.ErrPermission)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%v: %w", err, os.ErrNotExist)
	}
	return fmt.Errorf("the apiserver of %s: %v", r.Name, err)
}

// validNames keeps what goes into API paths to what Kubernetes accepts; a
// name it would refuse cannot exist.
func validNames(ns, pod, container string) error {
	check := func(what, v string, f func(string) []string) error {
		if v == "" {
			return nil
		}
		if errs := f(v); len(errs) > 0 {
			return fmt.Errorf("%s %q: %s: %w", what, v, errs[0], os.ErrNotExist)
		}
		return nil
	}
	if err := check("namespace", ns, validation.IsDNS1123Label); err != nil {
		return err
	}
	if err := check("pod", pod, validation.IsDNS1123Subdomain); err != nil {
		return err
	}
	return check("container", container, validation.IsDNS1123Label)
}

// limitedBuffer keeps the first 4 KiB written to it (a command's stderr).
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.b = append(l.b, p[:room]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
