// Package k8s is the bastion's client side of a Kubernetes apiserver: it
// builds the bastion's own rest.Config from a kube Resource, proxies HTTP
// (and upgrades: exec, attach, port-forward over SPDY and WebSocket) with
// client-go's impersonating transport and apimachinery's upgrade-aware
// proxy, and parses request paths with the apiserver's RequestInfo
// resolver for the audit log. For tunnels to workloads it also resolves a
// Service to a ready pod, asks SelfSubjectAccessReviews, and relays one
// connection over pods/portforward with client-go's SPDY dialer
// (workload.go). It knows nothing of SSH or policy: callers pass the
// identity to impersonate.
package k8s
