// Package hostshell opens shells and runs commands on ssh Resources for
// the user: `ssh -t bastion web-1` and `ssh bastion web-1 -- uptime`. The
// bastion logs in to the target with a short-lived certificate from its own
// user CA (targets trust it through TrustedUserCAKeys), passes the PTY,
// window changes, signals and the exit status through, and runs each shell
// inside a session, so TTL, idle timeout, revocation and policy changes cut
// it like a forward. It also runs the front door (`ssh bastion` with a
// terminal): the tui resource picker, from which users open shells, file
// access requests for locked Resources and, as reviewers, decide them.
// The open TUIs follow the store's change feed through one shared watch
// (watch.go), so grants, requests and sessions show without a key. From
// the TUI, a pod of a kube Resource opens a shell (pods/exec as the
// impersonated user, recorded and audited like a host shell) or its logs
// (podshell.go), and a step-up runs in place (stepup.go). `ssh -A` to a
// host forwards the user's agent only with forward_agent on the Resource
// (agent.go).
package hostshell
