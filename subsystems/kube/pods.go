package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/tui/termsafe"
)

// nsListing is what `pods` shows of one namespace.
type nsListing struct {
	Namespace string        `json:"namespace"`
	Pods      []podInfo     `json:"pods"`
	Services  []serviceInfo `json:"services"`
	// Forbidden names what the user's RBAC did not let them list here.
	Forbidden []string `json:"forbidden,omitempty"`
}

type podInfo struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Ready   string `json:"ready"`
	IP      string `json:"ip,omitempty"`
	Ports   []int  `json:"ports"`
	Forward string `json:"forward,omitempty"` // the ssh -L for its first port
}

type serviceInfo struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Ports   []int  `json:"ports"`
	Forward string `json:"forward,omitempty"`
}

// podsCommand is `ssh bastion pods NAME [-n NS] [-o json]`: the
// namespaces, pods (with status) and services of a kube Resource that the
// impersonated user may list, each with the ssh -L that reaches it.
func (m *Module) podsCommand(ctx context.Context, sess ssh.Session, args []string) int {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return 1
	}
	var ns, output string
	cmd := &cobra.Command{
		Use:           "pods NAME [-n NAMESPACE] [-o table|json]",
		Short:         "List the namespaces, pods and services of a kube Resource that your Kubernetes RBAC lets you list",
		Example:       fmt.Sprintf("  %s pods prod\n  %s pods prod -n default -o json", m.cfg.Host, m.cfg.Host),
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(_ *cobra.Command, a []string) error {
			return m.listPods(ctx, p, a[0], ns, output, sess)
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "only this namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.SetArgs(args[1:])
	cmd.SetOut(sess)
	cmd.SetErr(sess.Stderr())
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(sess.Stderr(), "bastion: pods: "+termsafe.String(err.Error()))
		return 1
	}
	return 0
}

func (m *Module) listPods(ctx context.Context, p authn.Principal, name, ns, output string, out io.Writer) error {
	if output != "table" && output != "json" {
		return fmt.Errorf("unknown output format %q (use table or json)", output)
	}
	r, err := m.gate(ctx, p, name)
	if err != nil {
		return err
	}
	up, err := m.upstream(r)
	if err != nil {
		return fmt.Errorf("%s is not usable: %v; an admin must fix the Resource", r.Name, err)
	}
	id, err := m.identity(p, r)
	if err != nil {
		return fmt.Errorf("the groups for %s could not be evaluated (%v); try again", p.User, err)
	}
	// The listing goes to the cluster as the user: it is audited first.
	ev := store.Event{Actor: p.User, Action: "kube.list", Target: r.Name, Decision: "allow",
		Details: map[string]string{"namespace": ns, "as_user": id.User, "conn": p.SessionID}}
	if _, err := m.audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("refused: the audit log cannot record this now (%v); try again later", err)
	}
	core, err := up.Core(id)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var names []string
	if ns != "" {
		names = []string{ns}
	} else {
		l, err := core.Namespaces().List(lctx, metav1.ListOptions{})
		switch {
		case apierrors.IsForbidden(err):
			return fmt.Errorf("your Kubernetes RBAC in %s does not let user %q list namespaces; name one with -n NAMESPACE (%s pods %s -n NAMESPACE)",
				r.Name, id.User, m.cfg.Host, r.Name)
		case err != nil:
			return fmt.Errorf("the apiserver of %s: %v", r.Name, err)
		}
		for _, n := range l.Items {
			names = append(names, n.Name)
		}
	}
	var list []nsListing
	for _, n := range names {
		l, err := m.listNamespace(lctx, core, r.Name, n)
		if err != nil {
			return fmt.Errorf("the apiserver of %s: %v", r.Name, err)
		}
		if ns != "" || len(l.Pods) > 0 || len(l.Services) > 0 {
			list = append(list, l)
		}
	}
	if output == "json" {
		if list == nil {
			list = []nsListing{}
		}
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		_, err = out.Write(termsafe.JSON(append(b, '\n')))
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(cells ...string) {
		for i, c := range cells {
			cells[i] = termsafe.String(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("NAMESPACE", "KIND", "NAME", "STATUS", "PORTS", "FORWARD")
	for _, l := range list {
		for _, p := range l.Pods {
			row(l.Namespace, "pod", p.Name, p.Status+" "+p.Ready, ints(p.Ports), p.Forward)
		}
		for _, s := range l.Services {
			row(l.Namespace, "service", s.Name, s.Type, ints(s.Ports), s.Forward)
		}
		if len(l.Forbidden) > 0 {
			row(l.Namespace, strings.Join(l.Forbidden, ","), "-", "forbidden by your Kubernetes RBAC", "", "")
		}
	}
	return tw.Flush()
}

// gate finds a kube Resource the user may act on, as kubeconfig does.
func (m *Module) gate(ctx context.Context, p authn.Principal, name string) (store.Resource, error) {
	notKube := fmt.Errorf("%q is not a kube Resource (list them with `%s resources list`)", name, m.cfg.Host)
	r, err := m.resources.GetResource(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.Kind != "kube") {
		return r, notKube
	} else if err != nil {
		return r, err
	}
	deny := func(why string) {
		e := store.Event{Actor: p.User, Action: "kube.deny", Target: r.Name, Decision: "deny", Reason: why}
		if _, aerr := m.audit.Append(ctx, e); aerr != nil {
			subsystems.AuditLost(m.log, m.audit, e, aerr)
		}
	}
	if ok, why := subsystems.CanView(ctx, m.policy, p, r.Name); !ok {
		deny(why) // read like a name that does not exist (see CanView)
		return r, notKube
	}
	// Listing reads the cluster as the user: the same gate as a session.
	ok, err := m.policy.Check(ctx, p.Subject(), "act", "resource:"+r.Name)
	if err != nil || !ok {
		why := fmt.Sprintf("%s lacks act on resource:%s", p.Subject(), r.Name)
		if err != nil {
			why = "the policy could not be evaluated (" + err.Error() + ")" // fail closed
		}
		deny(why)
		return r, fmt.Errorf("refused: %s. Ask for access with: %s request create %s --reason \"...\"", why, m.cfg.Host, r.Name)
	}
	return r, nil
}

// listNamespace lists pods and services of ns; what RBAC forbids is noted,
// not fatal.
func (m *Module) listNamespace(ctx context.Context, core coreclient.CoreV1Interface, res, ns string) (nsListing, error) {
	l := nsListing{Namespace: ns, Pods: []podInfo{}, Services: []serviceInfo{}}
	pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		l.Forbidden = append(l.Forbidden, "pods")
	case err != nil:
		return l, err
	default:
		for _, p := range pods.Items {
			pi := podInfo{Name: p.Name, Status: podStatus(p), IP: p.Status.PodIP, Ports: []int{}}
			ready := 0
			for _, c := range p.Status.ContainerStatuses {
				if c.Ready {
					ready++
				}
			}
			pi.Ready = fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					pi.Ports = append(pi.Ports, int(cp.ContainerPort))
				}
			}
			if len(pi.Ports) > 0 {
				pi.Forward = fmt.Sprintf("%s -N -L %d:%s/pods/%s/%s:%d", m.cfg.Host, pi.Ports[0], res, ns, p.Name, pi.Ports[0])
			}
			l.Pods = append(l.Pods, pi)
		}
	}
	svcs, err := core.Services(ns).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		l.Forbidden = append(l.Forbidden, "services")
	case err != nil:
		return l, err
	default:
		for _, s := range svcs.Items {
			si := serviceInfo{Name: s.Name, Type: string(s.Spec.Type), Ports: []int{}}
			for _, sp := range s.Spec.Ports {
				si.Ports = append(si.Ports, int(sp.Port))
			}
			if len(si.Ports) > 0 && len(s.Spec.Selector) > 0 {
				si.Forward = fmt.Sprintf("%s -N -L %d:%s/services/%s/%s:%d", m.cfg.Host, si.Ports[0], res, ns, s.Name, si.Ports[0])
			}
			l.Services = append(l.Services, si)
		}
	}
	sort.Slice(l.Pods, func(i, j int) bool { return l.Pods[i].Name < l.Pods[j].Name })
	sort.Slice(l.Services, func(i, j int) bool { return l.Services[i].Name < l.Services[j].Name })
	return l, nil
}

// podStatus is what kubectl get pods shows in STATUS, roughly: a waiting
// or terminated container's reason wins over the phase.
func podStatus(p corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, c := range p.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
		if t := c.State.Terminated; t != nil && t.Reason != "" && p.Status.Phase == corev1.PodRunning {
			return t.Reason
		}
	}
	if p.Status.Phase == "" {
		return "Pending"
	}
	return string(p.Status.Phase)
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
