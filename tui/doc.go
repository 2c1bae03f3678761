// Package tui is the bastion's terminal user interface: what a user sees
// after `ssh bastion` with a PTY.
//
// It lists the Resources the user may see (locked ones marked and dimmed),
// filters them as the user types, shows the exact ssh commands that reach
// the selected Resource through the bastion, and has a Sessions page where
// the user can end their live sessions. Enter on a locked Resource opens a
// form that files a just-in-time access request (reason, TTL); reviewers
// see how many requests wait for them in the header and approve or deny
// them on the Requests page. Every page follows the bastion by itself:
// with a [Watcher] backend, each reported change (a grant, an approval, a
// request, a session, on any replica) loads what it touches once the
// burst is over; without one, the pages poll (live.go). `y` shows the
// selected row's command alone on a line, to copy it (yank.go). With a
// [Workloads] backend, a kube Resource opens in place into the namespaces,
// pods and services the user's Kubernetes RBAC lets them list, loaded only
// then and within a bound; enter on a pod or l picks its shell or logs,
// and the detail pane gives each one's exact ssh -L (workloads.go). With a
// [StepUpper] backend, Resources that need a step-up are marked, and enter
// runs the step-up in place before going on (stepup.go). It is
// built from bubbletea models and lipgloss styles; text inputs are
// hand-rolled (field.go).
//
// The package knows nothing about stores, policy or the SSH server: it talks
// to the small [Backend] interface declared here, and [Run] takes the SSH
// session's streams, window size and environment in [Options]. Colours follow
// the client's environment (NO_COLOR, TERM=dumb), never the server's own
// terminal.
//
// Every field that others wrote (names, labels, addresses, reasons, the
// backend's errors) is drawn through the bastion's one sanitiser,
// [github.com/sshbastion/bastion/tui/termsafe]: table cells in row, the
// status in footer, the rest where it is drawn.
package tui
