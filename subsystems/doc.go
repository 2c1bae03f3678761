// Package subsystems is the SSH server core: it accepts connections, applies
// pre-authentication limits (deadline, attempt cap, per-source throttle),
// authenticates through package authn, and then dispatches every channel,
// request, exec command and `ssh -s` subsystem through one Table that the
// feature modules (sub-packages such as commands/) fill in.
//
// Anything that no module registered is refused with a reason and audited:
// deny by default.
package subsystems
