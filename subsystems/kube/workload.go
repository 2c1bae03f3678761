package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/k8s"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/reasons"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// Reason codes of workload tunnels (package reasons).
const (
	reasonKubeRBAC    = reasons.KubeRBACDenied
	reasonBadWorkload = reasons.BadWorkload
	reasonNoWorkload  = reasons.NoWorkload
)

// workload is a parsed `-L` target below a kube Resource.
type workload struct {
	kind      string // "pods" or "services"
	namespace string
	name      string
}

// parseWorkload reads "pods/NS/NAME" or "services/NS/NAME" (also pod/,
// po/, service/, svc/), the part of the -L host after the Resource name.
func parseWorkload(s string) (workload, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return workload{}, fmt.Errorf("%q is not pods/NAMESPACE/NAME or services/NAMESPACE/NAME", s)
	}
	w := workload{namespace: parts[1], name: parts[2]}
	switch parts[0] {
	case "pods", "pod", "po":
		w.kind = "pods"
	case "services", "service", "svc":
		w.kind = "services"
	default:
		return workload{}, fmt.Errorf("%q is neither pods nor services", parts[0])
	}
	// Names go into API paths: only what Kubernetes itself accepts.
	if errs := validation.IsDNS1123Label(w.namespace); len(errs) > 0 {
		return workload{}, fmt.Errorf("namespace %q: %s", w.namespace, errs[0])
	}
	if errs := validation.IsDNS1123Subdomain(w.name); len(errs) > 0 {
		return workload{}, fmt.Errorf("name %q: %s", w.name, errs[0])
	}
	return w, nil
}

// ServeWorkload takes a direct-tcpip channel to a pod or service of a
// kube Resource (`ssh -L 8080:prod/pods/NS/NAME:PORT`), whose act the
// forward module checked, and relays it over pods/portforward as the
// impersonated user. The cluster's RBAC is the second gate: the user must
// be allowed get on the pod and create on its portforward subresource,
// asked before anything opens so that a refusal names what is missing.
func (m *Module) ServeWorkload(ctx context.Context, p authn.Principal, r store.Resource, target, path string, port int, nc gossh.NewChannel) {
	details := func(w workload, pod string) map[string]string {
		d := map[string]string{"target": target, "source": p.SourceAddr, "conn": p.SessionID, "namespace": w.namespace, "port": strconv.Itoa(port)}
		if w.kind == "services" {
			d["service"] = w.name
		}
		if pod != "" {
			d["pod"] = pod
		}
		return d
	}
	deny := func(w workload, pod, code, msg string) {
		d := details(w, pod)
		d[reasons.DetailKey] = code
		e := store.Event{Actor: p.User, Action: "forward.deny", Target: r.Name, Decision: "deny", Reason: msg, Details: d}
		if _, err := m.audit.Append(ctx, e); err != nil {
			subsystems.AuditLost(m.log, m.audit, e, err)
		}
		_ = nc.Reject(gossh.Prohibited, "bastion: "+msg)
	}
	w, err := parseWorkload(path)
	if err != nil {
		deny(w, "", reasonBadWorkload, fmt.Sprintf("forward to %s refused: %v; kube tunnels name RESOURCE/pods/NAMESPACE/NAME:PORT or RESOURCE/services/NAMESPACE/NAME:PORT", target, err))
		return
	}
	up, err := m.upstream(r)
	if err != nil {
		deny(w, "", reasonNoWorkload, fmt.Sprintf("forward to %s: %s cannot be reached: %v; an admin must fix the Resource", target, r.Name, err))
		return
	}
	id, err := m.identity(p, r)
	if err != nil {
		deny(w, "", reasons.PolicyError, fmt.Sprintf("forward to %s refused: the groups for %s could not be evaluated (%v); try again", target, p.User, err))
		return
	}
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pod, podPort := w.name, port
	if w.kind == "services" {
		pod, podPort, err = up.ServicePod(actx, id, w.namespace, w.name, port)
		if err != nil {
			code, msg := m.kubeRefusal(r, id, w, err, "get services and list pods")
			deny(w, "", code, fmt.Sprintf("forward to %s refused: %s", target, msg))
			return
		}
	}
	// The cluster's RBAC, as the user: both must hold.
	denied, err := up.FirstDenied(actx, id,
		authzv1.ResourceAttributes{Namespace: w.namespace, Verb: "get", Resource: "pods", Name: pod},
		authzv1.ResourceAttributes{Namespace: w.namespace, Verb: "create", Resource: "pods", Subresource: "portforward", Name: pod})
	if err != nil {
		deny(w, pod, reasonNoWorkload, fmt.Sprintf("forward to %s: the Kubernetes RBAC of %s could not be asked (%v); try again", target, r.Name, err))
		return
	}
	if d := denied; d != nil {
		deny(w, pod, reasonKubeRBAC, fmt.Sprintf("forward to %s refused by the Kubernetes RBAC of %s, not by the bastion (you have act on resource:%s): "+
			"user %q (groups %s) may not %s %s %q in namespace %s%s. Ask a cluster admin of %s for a Role in %s granting create on pods/portforward "+
			"and get on pods, bound to user %q or one of those groups (e.g. kubectl -n %s create role pf --verb=get,create --resource=pods,pods/portforward; "+
			"kubectl -n %s create rolebinding pf --role=pf --user=%s)",
			target, r.Name, r.Name, id.User, groupList(id), d.Attrs.Verb, d.Resource(), pod, w.namespace, d.Because(), r.Name, w.namespace, id.User,
			w.namespace, w.namespace, id.User))
		return
	}
	conn, err := up.DialPortForward(actx, id, w.namespace, pod)
	if err != nil {
		code, msg := m.kubeRefusal(r, id, w, err, "create pods/portforward")
		deny(w, pod, code, fmt.Sprintf("forward to %s: %s", target, msg))
		return
	}
	var once sync.Once
	var ch gossh.Channel
	closeAll := func(string) {
		once.Do(func() {
			_ = conn.Close()
			if ch != nil {
				_ = ch.Close()
			}
		})
	}
	live, err := m.sessions.Open(ctx, sessions.Request{Principal: p, Resource: r, Kind: "forward", Target: target, Closer: closeAll})
	if err != nil {
		_ = conn.Close()
		_ = nc.Reject(gossh.ResourceShortage, "bastion: cannot open a session: "+err.Error())
		return
	}
	d := details(w, pod)
	d["session"], d["as_user"], d["pod_port"] = live.ID(), id.User, strconv.Itoa(podPort)
	// No byte flows before forward.open is durable.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "forward.open", Target: r.Name, Decision: "allow", Details: d}); err != nil {
		m.sessions.End(live, "audit unavailable")
		_ = conn.Close()
		_ = nc.Reject(gossh.ResourceShortage, "bastion: the audit log cannot record this forward now; try again later")
		return
	}
	c, reqs, err := nc.Accept()
	if err != nil {
		m.sessions.End(live, sessions.ReasonClientClosed)
		_ = conn.Close()
		return
	}
	ch = c
	go gossh.DiscardRequests(reqs)
	opened := time.Now()
	ferr := k8s.ForwardStream(conn, podPort, &countedChannel{Channel: ch, live: live})
	reason := m.sessions.End(live, sessions.ReasonTargetClosed)
	closeAll(reason)
	s := live.Snapshot()
	cd := details(w, pod)
	cd["session"], cd["pod_port"] = s.ID, strconv.Itoa(podPort)
	cd["bytes_in"], cd["bytes_out"] = strconv.FormatInt(s.BytesIn, 10), strconv.FormatInt(s.BytesOut, 10)
	cd["duration"] = time.Since(opened).Round(time.Millisecond).String()
	if ferr != nil {
		cd["error"] = ferr.Error()
	}
	closed := store.Event{Actor: p.User, Action: "forward.close", Target: r.Name, Decision: "allow", Reason: reason, Details: cd}
	if _, err := m.audit.Append(context.Background(), closed); err != nil {
		subsystems.AuditLost(m.log, m.audit, closed, err)
	}
}

// kubeRefusal words an apiserver error met while resolving or dialing a
// workload: a 403 is the cluster's RBAC (what needed), a 404 no such
// thing, anything else the cluster's trouble.
func (m *Module) kubeRefusal(r store.Resource, id k8s.Identity, w workload, err error, needed string) (string, string) {
	kind := strings.TrimSuffix(w.kind, "s")
	switch {
	case apierrors.IsForbidden(err):
		return reasonKubeRBAC, fmt.Sprintf("refused by the Kubernetes RBAC of %s, not by the bastion: user %q (groups %s) may not %s in namespace %s (%v). "+
			"Ask a cluster admin of %s for a Role granting it, bound to user %q", r.Name, id.User, groupList(id), needed, w.namespace,
			err, r.Name, id.User)
	case apierrors.IsNotFound(err):
		return reasonNoWorkload, fmt.Sprintf("there is no %s %q in namespace %s of %s (or you may not see it); list them with: %s pods %s -n %s",
			kind, w.name, w.namespace, r.Name, m.cfg.Host, r.Name, w.namespace)
	case errors.Is(err, k8s.ErrNoReadyPod):
		return reasonNoWorkload, err.Error() + "; try again once one is ready"
	}
	return reasonNoWorkload, fmt.Sprintf("%s %s/%s of %s cannot be reached: %v", kind, w.namespace, w.name, r.Name, err)
}

func groupList(id k8s.Identity) string {
	if len(id.Groups) == 0 {
		return "none"
	}
	return strings.Join(id.Groups, ",")
}

// countedChannel counts a workload tunnel's bytes into its session (in:
// from the user, out: to the user), which also keeps it from going idle.
type countedChannel struct {
	gossh.Channel
	live *sessions.Live
}

func (c *countedChannel) Read(p []byte) (int, error) {
	n, err := c.Channel.Read(p)
	c.live.CountIn(n)
	return n, err
}

func (c *countedChannel) Write(p []byte) (int, error) {
	n, err := c.Channel.Write(p)
	c.live.CountOut(n)
	return n, err
}
