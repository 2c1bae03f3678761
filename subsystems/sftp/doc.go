// Package sftp serves the "sftp" subsystem (and with it OpenSSH ≥ 9 scp):
// a virtual tree whose root lists, as directories, the ssh Resources the
// user may act on. /NAME/... is NAME's own filesystem, reached through an
// onward SFTP session that the bastion opens with a short-lived
// certificate from its user CA, as the login the Resource allows.
//
// Every path is cleaned and split into (Resource, host path) before any
// use, so that `..`, absolute paths and symlink targets never leave a
// Resource's directory or cross into another (see resolve). Each Resource
// touched is gated by act and runs inside a session (TTL, idle timeout,
// revocation), and every file operation is audited with its bytes.
//
// A kube Resource's directory (with Config.Pods) is its pods instead:
// /NAME/NAMESPACE/POD/CONTAINER/path, each operation a fixed script run
// through pods/exec as the impersonated user (pods.go, podscripts.go,
// podfile.go), behind both act and the cluster's own RBAC. The handlers
// see every Resource as a tree (tree.go).
package sftp
