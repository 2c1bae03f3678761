// Package harness drives the bastion the way users do: it builds the real
// binary once, starts it on a loopback port with a temporary data
// directory, makes keys with ssh-keygen, and runs the real OpenSSH client
// against it. It also starts real peers (a Debian sshd target) for the
// features that reach hosts.
package harness
