// Package e2e holds the end-to-end tests: they build the bastion once and
// drive it as users do, with the real OpenSSH client, sftp, scp, kubectl,
// tmux and asciinema, against real peers (Debian sshd, kube-apiserver with
// etcd, the npm oidc-provider), started by package harness.
package e2e
