// Package kube serves kube-API forwards: `ssh bastion kubeconfig NAME`
// issues a kubeconfig with a one-time token bound to the user, the
// Resource and a session; `ssh -L 6443:NAME:443 bastion` carries kubectl's
// TLS connections, which this module terminates in-process and proxies to
// the apiserver through the k8s package, impersonating the user with the
// groups mapped from ReBAC relations. Every request is audited as
// kube.request with the apiserver's own RequestInfo attributes.
//
// A token dies with its session, wherever the session is ended: the
// session manager of the replica holding it cuts it (from the store's
// change feed when it was killed elsewhere), which ends the token. With
// Config.Tokens and Config.Feed the store keeps each token's SHA-256 too,
// so that a tunnel on another replica accepts it (remote.go).
//
// Workloads (workload.go): `ssh -L 8080:NAME/pods/NS/POD:PORT` and
// `.../services/NS/SVC:PORT` relay each connection over one
// pods/portforward stream as the impersonated user, once both the ReBAC
// act (checked by the forward module) and the cluster's own RBAC (asked
// with SelfSubjectAccessReviews) allow it. `ssh bastion pods NAME` lists
// what the impersonated user may list (pods.go); the front door's TUI
// lists the same, opens shells in pods and follows their logs through the
// exported methods of podaccess.go. podexec.go serves the sftp tree of
// pods: listings, SelfSubjectAccessReviews for get pods and create
// pods/exec, and commands run through pods/exec, as the user.
//
// Egress (egress.go): `ssh -R NS/SVC:PORT:localhost:LOCALPORT` into a
// Resource of the config file with kube.egress_address, gated by the
// relation egress and the cluster's RBAC, publishes Service NS/SVC with an
// EndpointSlice at that address, relays each in-cluster connection as a
// forwarded-tcpip channel, and takes it all back when it ends.
package kube
