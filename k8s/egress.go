package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"
	"k8s.io/client-go/rest"
)

// EgressManagedBy is the EndpointSlice managed-by label value of the
// slices an egress publishes (the endpoints controller leaves them alone).
const EgressManagedBy = "bastion.sshbastion.github.io"

// Refusals of PublishEgress that are the Service's state, not RBAC.
var (
	ErrServiceHasSelector = errors.New("the Service has a selector: its endpoints belong to its pods, and the bastion only publishes into selector-less Services")
	ErrServicePortTaken   = errors.New("the Service already has that port")
	ErrEgressSliceExists  = errors.New("an EndpointSlice of the bastion for this Service exists already (another live -R, or one left behind)")
)

// Egress is what PublishEgress made or changed in the cluster, as one
// user, so that Remove can take it back as that user.
type Egress struct {
	u         *Upstream
	id        Identity
	Namespace string
	Service   string
	Slice     string
	PortName  string
	created   bool // the Service was made by us: delete it
	svcUID    types.UID
	sliceUID  types.UID
}

// Created says whether the Service was made (else: patched with a port).
func (e *Egress) Created() bool { return e.created }

// PublishEgress makes Service ns/name answer on port with the endpoint
// ip:target, as id: a selector-less Service is created (or, if one exists
// without a selector, given the port), and an EndpointSlice names ip:target
// for it. A Service with a selector is refused: its endpoints are its
// pods', and the bastion must not take them over.
func (u *Upstream) PublishEgress(ctx context.Context, id Identity, ns, name string, port int32, ip string, target int32) (*Egress, error) {
	core, err := u.Core(id)
	if err != nil {
		return nil, err
	}
	h, err := u.httpClient(id)
	if err != nil {
		return nil, err
	}
	disc, err := discoveryclient.NewForConfigAndClient(rest.CopyConfig(u.cfg), h)
	if err != nil {
		return nil, err
	}
	e := &Egress{u: u, id: id, Namespace: ns, Service: name, Slice: name + "-bastion-egress", PortName: "egress-" + strconv.Itoa(int(port))}
	ours := corev1.ServicePort{Name: e.PortName, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(target)}
	svc, err := core.Services(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		made, cerr := core.Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": EgressManagedBy}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{ours}},
		}, metav1.CreateOptions{})
		if cerr != nil {
			return nil, cerr
		}
		e.created, e.svcUID = true, made.UID
	case err != nil:
		return nil, err
	default:
		if len(svc.Spec.Selector) > 0 {
			return nil, ErrServiceHasSelector
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Port == port || sp.Name == e.PortName {
				return nil, ErrServicePortTaken
			}
		}
		// A merge patch replaces the list: the resourceVersion makes it
		// fail rather than overwrite a change made meanwhile.
		if err := e.patchPorts(ctx, svc, append(svc.Spec.Ports, ours)); err != nil {
			return nil, err
		}
		e.svcUID = svc.UID
	}
	ready := true
	proto := corev1.ProtocolTCP
	slice, err := disc.EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: e.Slice, Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: EgressManagedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &e.PortName, Port: &target, Protocol: &proto}},
	}, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			err = ErrEgressSliceExists
		}
		_ = e.removeService(context.WithoutCancel(ctx), core)
		return nil, err
	}
	e.sliceUID = slice.UID
	return e, nil
}

func (e *Egress) patchPorts(ctx context.Context, svc *corev1.Service, ports []corev1.ServicePort) error {
	core, err := e.u.Core(e.id)
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": svc.ResourceVersion},
		"spec":     map[string]any{"ports": ports},
	})
	_, err = core.Services(e.Namespace).Patch(ctx, e.Service, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// Remove takes back, as the same user, what PublishEgress did: the
// EndpointSlice, and the Service if it made it, or its port if it patched
// one in. Preconditions on the UIDs keep it from deleting an object that
// someone made anew under the same name meanwhile.
func (e *Egress) Remove(ctx context.Context) error {
	core, err := e.u.Core(e.id)
	if err != nil {
		return err
	}
	h, err := e.u.httpClient(e.id)
	if err != nil {
		return err
	}
	disc, err := discoveryclient.NewForConfigAndClient(rest.CopyConfig(e.u.cfg), h)
	if err != nil {
		return err
	}
	var errs []error
	uid := e.sliceUID
	if err := disc.EndpointSlices(e.Namespace).Delete(ctx, e.Slice, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("endpointslice %s/%s: %w", e.Namespace, e.Slice, err))
	}
	if err := e.removeService(ctx, core); err != nil {
		errs = append(errs, fmt.Errorf("service %s/%s: %w", e.Namespace, e.Service, err))
	}
	return errors.Join(errs...)
}

func (e *Egress) removeService(ctx context.Context, core coreclient.CoreV1Interface) error {
	svcs := core.Services(e.Namespace)
	if e.created {
		uid := e.svcUID
		err := svcs.Delete(ctx, e.Service, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	svc, err := svcs.Get(ctx, e.Service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if svc.UID != e.svcUID {
		return nil // not the Service we patched
	}
	kept := make([]corev1.ServicePort, 0, len(svc.Spec.Ports))
	for _, sp := range svc.Spec.Ports {
		if sp.Name != e.PortName {
			kept = append(kept, sp)
		}
	}
	if len(kept) == len(svc.Spec.Ports) {
		return nil
	}
	return e.patchPorts(ctx, svc, kept)
}
