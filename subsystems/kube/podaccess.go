package kube

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/k8s"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/reasons"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// What the front door (the TUI) reaches of a kube Resource's workloads:
// the same listing as `ssh bastion pods`, and a shell or the logs of one
// pod, all as the impersonated user.

// Namespace is what the user may list of one namespace.
type Namespace struct {
	Name      string
	Pods      []Pod
	Services  []Service
	Forbidden []string // what the user's RBAC did not let them list here
}

// Pod is one pod as listed.
type Pod struct {
	Name, Status, Ready, IP string
	Ports                   []int
}

// Service is one Service as listed; Forwardable is false for a Service
// that no tunnel can reach (no port, or it selects no pod).
type Service struct {
	Name, Type  string
	Ports       []int
	Forwardable bool
}

// listTimeout bounds one listing of a Resource's workloads.
const listTimeout = 10 * time.Second

// Workloads lists the namespaces, pods and services of the kube Resource
// name that p's Kubernetes RBAC lets them list, as `pods` does: gated by
// act, audited as kube.list. named are namespaces the user named, listed
// too (they go into API paths: only valid names). When the user may not
// list namespaces, it lists those and "default", and says so in the error
// (the listing is still returned).
func (m *Module) Workloads(ctx context.Context, p authn.Principal, name string, named []string) ([]Namespace, error) {
	for _, ns := range named {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("namespace %q: %s", ns, errs[0])
		}
	}
	r, err := m.gate(ctx, p, name)
	if err != nil {
		return nil, err
	}
	up, err := m.upstream(r)
	if err != nil {
		return nil, fmt.Errorf("%s is not usable: %v; an admin must fix the Resource", r.Name, err)
	}
	id, err := m.identity(p, r)
	if err != nil {
		return nil, fmt.Errorf("the groups for %s could not be evaluated (%v); try again", p.User, err)
	}
	// The listing reads the cluster as the user: audited first.
	ev := store.Event{Actor: p.User, Action: "kube.list", Target: r.Name, Decision: "allow",
		Details: map[string]string{"as_user": id.User, "conn": p.SessionID, "via": "tui", "namespace": strings.Join(named, ",")}}
	if _, err := m.audit.Append(ctx, ev); err != nil {
		return nil, fmt.Errorf("refused: the audit log cannot record this now (%v); try again later", err)
	}
	core, err := up.Core(id)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	var names []string
	var partial error
	l, err := core.Namespaces().List(lctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		names = []string{"default"}
		partial = fmt.Errorf("refused by the Kubernetes RBAC of %s: user %q (groups %s) may not list namespaces, so only default and those you name are shown; "+
			"press n to name yours (or run `%s pods %s -n NAMESPACE`), or ask a cluster admin of %s for list on namespaces",
			r.Name, id.User, groupList(id), m.cfg.Host, r.Name, r.Name)
	case err != nil:
		return nil, fmt.Errorf("the apiserver of %s: %v", r.Name, err)
	default:
		for _, n := range l.Items {
			names = append(names, n.Name)
		}
	}
	for _, n := range named {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var out []Namespace
	for _, n := range names {
		nl, err := m.listNamespace(lctx, core, r.Name, n)
		if err != nil {
			return nil, fmt.Errorf("the apiserver of %s: %v", r.Name, err)
		}
		if len(nl.Pods) == 0 && len(nl.Services) == 0 && len(nl.Forbidden) == 0 {
			continue
		}
		if len(names) > 1 && len(nl.Pods) == 0 && len(nl.Services) == 0 && !slices.Contains(named, n) {
			continue // a namespace the user may see nothing in says nothing
		}
		ns := Namespace{Name: nl.Namespace, Forbidden: nl.Forbidden}
		for _, p := range nl.Pods {
			ns.Pods = append(ns.Pods, Pod{Name: p.Name, Status: p.Status, Ready: p.Ready, IP: p.IP, Ports: p.Ports})
		}
		for _, s := range nl.Services {
			ns.Services = append(ns.Services, Service{Name: s.Name, Type: s.Type, Ports: s.Ports, Forwardable: s.Forward != ""})
		}
		out = append(out, ns)
	}
	if partial == nil && len(out) == 0 && len(names) > 0 {
		partial = fmt.Errorf("refused by the Kubernetes RBAC of %s: user %q (groups %s) may list no pods or services in any namespace; ask a cluster admin of %s for a Role granting list on pods and services",
			r.Name, id.User, groupList(id), r.Name)
	}
	return out, partial
}

// PodShell is a shell in one container of a pod, checked against the
// bastion's gate (act, step-up) and the cluster's RBAC, ready to run.
type PodShell struct {
	Resource          store.Resource
	Namespace, Pod    string
	Container, AsUser string
	StepUp            stepup.Verdict // Until and Renew go into the session
	up                *k8s.Upstream
	id                k8s.Identity
}

// shellCommand starts bash where the image has it, else sh.
var shellCommand = []string{"sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh"}

// PreparePodShell checks that p may open a shell in pod ns/pod of the
// kube Resource name: act on the Resource (ReBAC), its step-up for kube
// sessions, and the cluster's RBAC (get on the pod, create on
// pods/exec), asked before anything opens so that a refusal names what is
// missing. Refusals are audited as kube.deny (the message says why and
// how to get it).
func (m *Module) PreparePodShell(ctx context.Context, p authn.Principal, name, ns, pod string) (*PodShell, error) {
	w, err := parseWorkload("pods/" + ns + "/" + pod)
	if err != nil {
		return nil, err
	}
	r, err := m.gate(ctx, p, name)
	if err != nil {
		return nil, err
	}
	target := fmt.Sprintf("shell in pod %s/%s of %s", ns, pod, r.Name)
	var su stepup.Verdict
	if m.cfg.StepUp != nil {
		// A pod shell is a kube session: its step-up applies.
		if su = m.cfg.StepUp.Open(ctx, p, "kube", r, target); !su.OK {
			m.denied(ctx, p, r, su.Reason, su.Details)
			return nil, fmt.Errorf("%s", su.Message)
		}
	}
	up, id, err := m.asUser(p, r)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	d, err := up.FirstDenied(actx, id, authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "exec", Name: pod})
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes RBAC of %s could not be asked (%v); try again", r.Name, err)
	}
	if d != nil {
		msg := fmt.Sprintf("%s refused by the Kubernetes RBAC of %s, not by the bastion: user %q (groups %s) may not create pods/exec on %q in namespace %s%s. "+
			"Ask a cluster admin of %s for a Role granting create on pods/exec, bound to user %q (e.g. kubectl -n %s create role exec --verb=get,create --resource=pods,pods/exec)",
			target, r.Name, id.User, groupList(id), pod, ns, d.Because(), r.Name, id.User, ns)
		m.denied(ctx, p, r, msg, map[string]string{"namespace": ns, "pod": pod, reasons.DetailKey: reasonKubeRBAC})
		return nil, fmt.Errorf("%s", msg)
	}
	po, err := up.GetPod(actx, id, ns, pod)
	if err != nil {
		_, msg := m.kubeRefusal(r, id, w, err, "get pods")
		return nil, fmt.Errorf("%s refused: %s", target, msg)
	}
	c := k8s.DefaultContainer(po)
	if c == "" {
		return nil, fmt.Errorf("pod %s/%s of %s has no container", ns, pod, r.Name)
	}
	return &PodShell{Resource: r, Namespace: ns, Pod: pod, Container: c, AsUser: id.User, StepUp: su, up: up, id: id}, nil
}

// Run runs the shell until it exits or ctx ends (a cut session), and
// returns its exit status.
func (s *PodShell) Run(ctx context.Context, t k8s.ShellIO) (int, error) {
	return s.up.ShellExec(ctx, s.id, s.Namespace, s.Pod, s.Container, shellCommand, t)
}

// PodLogs follows the logs of pod ns/pod of the kube Resource name as
// the impersonated user, from its last tail lines; gated by act and
// audited as kube.logs before anything is read. It returns the container
// it follows.
func (m *Module) PodLogs(ctx context.Context, p authn.Principal, name, ns, pod string, tail int64) (io.ReadCloser, string, error) {
	w, err := parseWorkload("pods/" + ns + "/" + pod)
	if err != nil {
		return nil, "", err
	}
	r, err := m.gate(ctx, p, name)
	if err != nil {
		return nil, "", err
	}
	if m.cfg.StepUp != nil {
		// The logs are read as the user through a kube session's gate:
		// its step-up applies, as to a kubeconfig.
		if su := m.cfg.StepUp.Open(ctx, p, "kube", r, fmt.Sprintf("logs of pod %s/%s of %s", ns, pod, r.Name)); !su.OK {
			m.denied(ctx, p, r, su.Reason, su.Details)
			return nil, "", fmt.Errorf("%s", su.Message)
		}
	}
	up, id, err := m.asUser(p, r)
	if err != nil {
		return nil, "", err
	}
	actx, cancel := context.WithTimeout(ctx, listTimeout)
	po, err := up.GetPod(actx, id, ns, pod)
	cancel()
	if err != nil {
		_, msg := m.kubeRefusal(r, id, w, err, "get pods")
		return nil, "", fmt.Errorf("logs of pod %s/%s refused: %s", ns, pod, msg)
	}
	c := k8s.DefaultContainer(po)
	ev := store.Event{Actor: p.User, Action: "kube.logs", Target: r.Name, Decision: "allow",
		Details: map[string]string{"namespace": ns, "pod": pod, "container": c, "as_user": id.User, "conn": p.SessionID, "via": "tui"}}
	if _, err := m.audit.Append(ctx, ev); err != nil {
		return nil, "", fmt.Errorf("refused: the audit log cannot record this now (%v); try again later", err)
	}
	rc, err := up.FollowLogs(ctx, id, ns, pod, c, tail)
	if err != nil {
		_, msg := m.kubeRefusal(r, id, w, err, "get pods/log")
		return nil, c, fmt.Errorf("logs of pod %s/%s: %s", ns, pod, msg)
	}
	return rc, c, nil
}

// asUser is the apiserver of r and who p is there.
func (m *Module) asUser(p authn.Principal, r store.Resource) (*k8s.Upstream, k8s.Identity, error) {
	up, err := m.upstream(r)
	if err != nil {
		return nil, k8s.Identity{}, fmt.Errorf("%s is not usable: %v; an admin must fix the Resource", r.Name, err)
	}
	id, err := m.identity(p, r)
	if err != nil {
		return nil, k8s.Identity{}, fmt.Errorf("the groups for %s could not be evaluated (%v); try again", p.User, err)
	}
	return up, id, nil
}

// denied audits a refusal of the front door's kube actions.
func (m *Module) denied(ctx context.Context, p authn.Principal, r store.Resource, why string, details map[string]string) {
	e := store.Event{Actor: p.User, Action: "kube.deny", Target: r.Name, Decision: "deny", Reason: why, Details: details}
	if _, err := m.audit.Append(ctx, e); err != nil {
		subsystems.AuditLost(m.log, m.audit, e, err)
	}
}
