// Package kube serves kube-API forwards: `ssh bastion kubeconfig NAME`
// issues a kubeconfig with a one-time token bound to the user, the
// Resource and a session; `ssh -L 6443:NAME:443 bastion` carries kubectl's
// TLS connections, which this module terminates in-process and proxies to
// the apiserver through the k8s package, impersonating the user with the
// groups mapped from ReBAC relations. Every request is audited as
// kube.request with the apiserver's own RequestInfo attributes.
package kube
