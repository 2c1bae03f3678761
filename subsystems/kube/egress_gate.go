package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/k8s"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
)

// egressTarget parses an -R bind address "NS/SVC" or "RES/NS/SVC"; ok is
// false when it has no slash (a plain -R, which is not ours to answer).
func egressTarget(addr string) (res, ns, svc string, ok bool, err error) {
	if !strings.Contains(addr, "/") {
		return "", "", "", false, nil
	}
	parts := strings.Split(addr, "/")
	switch len(parts) {
	case 2:
		ns, svc = parts[0], parts[1]
	case 3:
		res, ns, svc = parts[0], parts[1], parts[2]
	default:
		return "", "", "", true, fmt.Errorf("%q is not NAMESPACE/SERVICE or RESOURCE/NAMESPACE/SERVICE", addr)
	}
	// Names go into API paths: only what Kubernetes itself accepts.
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", "", "", true, fmt.Errorf("namespace %q: %s", ns, errs[0])
	}
	if errs := validation.IsDNS1035Label(svc); len(errs) > 0 {
		return "", "", "", true, fmt.Errorf("service %q: %s", svc, errs[0])
	}
	return res, ns, svc, true, nil
}

// egressResource finds the kube Resource an -R publishes into: the one
// named, or else the only one that offers egress. Only a Resource of the
// config file may: its egress_address makes the bastion listen on one of
// its own addresses, which is the operator's to choose, never a Resource
// made over ssh.
func (m *Module) egressResource(ctx context.Context, p authn.Principal, name string) (store.Resource, error) {
	offers := func(r store.Resource) bool {
		return r.Kind == "kube" && r.FromConfig() && r.Kube != nil && r.Kube.EgressAddress != ""
	}
	if name != "" {
		r, err := m.resources.GetResource(ctx, name)
		if err == nil && offers(r) {
			if ok, _ := subsystems.CanView(ctx, m.policy, p, r.Name); ok {
				return r, nil
			}
			err = store.ErrNotFound // read like a name that does not exist
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return r, err
		}
		return r, fmt.Errorf("%s is not a kube Resource that offers egress (kube.egress_address in the bastion's config)", name)
	}
	all, err := m.resources.ListResources(ctx)
	if err != nil {
		return store.Resource{}, err
	}
	var found []store.Resource
	for _, r := range all {
		if offers(r) {
			if ok, _ := subsystems.CanView(ctx, m.policy, p, r.Name); ok {
				found = append(found, r)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return store.Resource{}, errors.New("no kube Resource you may see offers egress (kube.egress_address in the bastion's config)")
	}
	return store.Resource{}, fmt.Errorf("%d kube Resources offer egress; name one: -R RESOURCE/NAMESPACE/SERVICE:PORT:localhost:LOCALPORT", len(found))
}

// egressRBAC asks, as id, for what an egress does in namespace ns: a
// message saying what is missing and how to get it, or "".
func egressRBAC(ctx context.Context, up *k8s.Upstream, id k8s.Identity, res, ns string) (string, error) {
	d, err := up.FirstDenied(ctx, id,
		authzv1.ResourceAttributes{Namespace: ns, Verb: "patch", Resource: "services"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "services"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "services"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "delete", Resource: "services"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "patch", Group: "discovery.k8s.io", Resource: "endpointslices"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "discovery.k8s.io", Resource: "endpointslices"},
		authzv1.ResourceAttributes{Namespace: ns, Verb: "delete", Group: "discovery.k8s.io", Resource: "endpointslices"})
	if err != nil {
		return "", err
	}
	if d != nil {
		return fmt.Sprintf("refused by the Kubernetes RBAC of %s, not by the bastion (you have egress on resource:%s): user %q (groups %s) may not %s %s in namespace %s%s. "+
			"Ask a cluster admin of %s for a Role granting get, create, patch and delete on services and endpointslices, bound to user %q or one of those groups "+
			"(e.g. kubectl -n %s create role egress --verb=get,create,patch,delete --resource=services,endpointslices.discovery.k8s.io; "+
			"kubectl -n %s create rolebinding egress --role=egress --user=%s)",
			res, res, id.User, groupList(id), d.Attrs.Verb, d.Resource(), ns, d.Because(), res, id.User, ns, ns, id.User), nil
	}
	return "", nil
}
