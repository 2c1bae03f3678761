package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/httpstream"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport"
	"k8s.io/client-go/transport/spdy"
)

// httpClient is client-go's transport as id: the bastion's TLS and
// credentials (the cached transport every handler shares) with id's
// Impersonate-* headers.
func (u *Upstream) httpClient(id Identity) (*http.Client, error) {
	tc := *u.tc
	tc.Impersonate = transport.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	rt, err := transport.New(&tc)
	if err != nil {
		return nil, fmt.Errorf("kube transport: %w", err)
	}
	return &http.Client{Transport: rt, Timeout: 30 * time.Second}, nil
}

// Core is the core/v1 client as id.
func (u *Upstream) Core(id Identity) (coreclient.CoreV1Interface, error) {
	h, err := u.httpClient(id)
	if err != nil {
		return nil, err
	}
	return coreclient.NewForConfigAndClient(rest.CopyConfig(u.cfg), h)
}

// Can asks the apiserver whether id may do what attrs say, with a
// SelfSubjectAccessReview made as id: the answer is the cluster's own RBAC
// (every authenticated user may ask about themselves). It returns the
// authorizer's reason, when it gave one.
func (u *Upstream) Can(ctx context.Context, id Identity, attrs authzv1.ResourceAttributes) (bool, string, error) {
	h, err := u.httpClient(id)
	if err != nil {
		return false, "", err
	}
	c, err := authzclient.NewForConfigAndClient(rest.CopyConfig(u.cfg), h)
	if err != nil {
		return false, "", err
	}
	r, err := c.SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
		Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}}, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return r.Status.Allowed, r.Status.Reason, nil
}

// Denial is a permission the cluster's RBAC refused: what was asked, and
// the authorizer's reason.
type Denial struct {
	Attrs  authzv1.ResourceAttributes
	Reason string
}

// Resource is the refused permission's resource as kubectl names it:
// resource, or resource/subresource.
func (d Denial) Resource() string {
	if d.Attrs.Subresource != "" {
		return d.Attrs.Resource + "/" + d.Attrs.Subresource
	}
	return d.Attrs.Resource
}

// Because is the authorizer's reason as " (reason)", or "" without one.
func (d Denial) Because() string {
	if d.Reason == "" {
		return ""
	}
	return " (" + d.Reason + ")"
}

// FirstDenied asks Can for each of needs as id, in order, and returns the
// first the cluster's RBAC refuses; nil when every one holds.
func (u *Upstream) FirstDenied(ctx context.Context, id Identity, needs ...authzv1.ResourceAttributes) (*Denial, error) {
	for _, need := range needs {
		ok, why, err := u.Can(ctx, id, need)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &Denial{Attrs: need, Reason: why}, nil
		}
	}
	return nil, nil
}

// ErrNoReadyPod: a Service has no ready pod to forward to.
var ErrNoReadyPod = errors.New("no ready pod")

// ServicePod picks the pod and container port that a connection to
// port of Service ns/name reaches, as `kubectl port-forward svc/NAME`
// does: a ready pod matching the Service's selector (the longest ready
// first), and the Service port's targetPort, a number or a named
// container port. It reads as id, so the user's RBAC must allow get on
// the Service and list on pods.
func (u *Upstream) ServicePod(ctx context.Context, id Identity, ns, name string, port int) (string, int, error) {
	core, err := u.Core(id)
	if err != nil {
		return "", 0, err
	}
	svc, err := core.Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", 0, err
	}
	var sp *corev1.ServicePort
	var ports []string
	for i := range svc.Spec.Ports {
		ports = append(ports, strconv.Itoa(int(svc.Spec.Ports[i].Port)))
		if int(svc.Spec.Ports[i].Port) == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return "", 0, fmt.Errorf("service %s/%s has no port %d (its ports: %v)", ns, name, port, ports)
	}
	if len(svc.Spec.Selector) == 0 {
		return "", 0, fmt.Errorf("service %s/%s has no selector, so no pod to forward to", ns, name)
	}
	pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", 0, err
	}
	var ready []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && readySince(p) != nil {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return "", 0, fmt.Errorf("service %s/%s: %w among the %d pods its selector matches", ns, name, ErrNoReadyPod, len(pods.Items))
	}
	sort.Slice(ready, func(i, j int) bool {
		a, b := readySince(ready[i]), readySince(ready[j])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return ready[i].Name < ready[j].Name
	})
	pod := ready[0]
	switch tp := sp.TargetPort; {
	case tp.Type == 0 && tp.IntVal == 0: // unset: the Service port itself
		return pod.Name, port, nil
	case tp.Type == 0:
		return pod.Name, int(tp.IntVal), nil
	default:
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == tp.StrVal {
					return pod.Name, int(cp.ContainerPort), nil
				}
			}
		}
		return "", 0, fmt.Errorf("pod %s/%s has no container port named %q (the targetPort of service %s port %d)", ns, pod.Name, tp.StrVal, name, port)
	}
}

// readySince is when p became Ready, nil if it is not.
func readySince(p corev1.Pod) *metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			t := c.LastTransitionTime
			return &t
		}
	}
	return nil
}

// DialPortForward opens the pods/portforward upgrade of pod ns/name as
// id, with client-go's SPDY dialer over the bastion's own dialer (the
// address guard of Resources made over ssh applies), TLS and credentials.
func (u *Upstream) DialPortForward(ctx context.Context, id Identity, ns, name string) (httpstream.Connection, error) {
	pu, err := u.podUpgradeFor(id, ns, name, "portforward")
	if err != nil {
		return nil, err
	}
	loc := pu.loc
	d := spdy.NewDialer(pu.upgrader, &http.Client{Transport: pu.wrapped}, http.MethodPost, &loc)
	type result struct {
		c   httpstream.Connection
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, _, err := d.Dial(portforward.PortForwardProtocolV1Name)
		res <- result{c, err}
	}()
	select {
	case r := <-res:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-res; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// HalfCloser is a local connection that can say it will send no more
// (an ssh channel, a TCP connection).
type HalfCloser interface {
	io.ReadWriter
	CloseWrite() error
}

// ForwardStream relays local to port of the pod behind conn, as one
// forwarded connection of the portforward.k8s.io protocol (an error
// stream and a data stream, sharing a request id), until the pod's side
// ends. It returns what the kubelet reported on the error stream (e.g.
// nothing listens on that port).
func ForwardStream(conn httpstream.Connection, port int, local HalfCloser) error {
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(port))
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return fmt.Errorf("open the error stream: %w", err)
	}
	_ = errStream.Close() // nothing is written to it
	remoteErr := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(errStream)
		switch {
		case err != nil:
			remoteErr <- fmt.Errorf("read the error stream: %w", err)
		case len(msg) > 0:
			remoteErr <- errors.New(string(msg))
		default:
			remoteErr <- nil
		}
	}()
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		return fmt.Errorf("open the data stream: %w", err)
	}
	go func() {
		_, _ = io.Copy(data, local)
		_ = data.Close() // the client sent everything: half-close
	}()
	_, _ = io.Copy(local, data)
	_ = local.CloseWrite()
	_ = data.Reset()
	select {
	case err := <-remoteErr:
		return err
	case <-time.After(2 * time.Second):
		return nil
	}
}
