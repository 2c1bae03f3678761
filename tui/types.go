package tui

import (
	"context"
	"io"
	"time"
)

// Backend is what the TUI needs from the rest of the bastion. The server
// binds it to the logged-in Principal.
type Backend interface {
	// Resources returns everything the user may see, reachable or not.
	Resources(ctx context.Context) ([]Item, error)
	// Sessions returns the user's live sessions.
	Sessions(ctx context.Context) ([]Session, error)
	// Kill ends one of the user's sessions.
	Kill(ctx context.Context, id string) error

	// RequestAccess files a just-in-time request for act on resource and
	// returns its id; a refusal's error says why.
	RequestAccess(ctx context.Context, resource, reason string, ttl time.Duration) (id string, err error)
	// Pending returns the pending requests of others that the user may
	// decide, never the user's own.
	Pending(ctx context.Context) ([]Request, error)
	// Decide approves or denies a pending request, with an optional
	// reason; a refusal's error says why.
	Decide(ctx context.Context, id string, approve bool, reason string) error
}

// What says what may have changed behind the TUI's back: a bit set.
type What uint8

// The kinds of change a Watcher reports.
const (
	ChangedResources What = 1 << iota // grants, Resources, the policy model
	ChangedSessions                   // live sessions
	ChangedRequests                   // access requests: the pending count
	ChangedAll       = ChangedResources | ChangedSessions | ChangedRequests
)

// Watcher may be implemented by a Backend whose data changes behind the
// TUI's back (an approval, a grant, another reviewer, a session on any
// replica): the picker, the Sessions page and the pending count then
// follow those changes instead of polling.
type Watcher interface {
	// Changes returns a channel that receives what may have changed and
	// closes when ctx ends (or the backend can no longer tell); nil when
	// it cannot tell at all. The sender never blocks: a value that waits
	// unread takes in the next changes (bits ORed).
	Changes(ctx context.Context) <-chan What
}

// Request is a pending access request as the reviewer's queue shows it.
type Request struct {
	ID, User  string
	Resources []string
	Reason    string
	TTL       time.Duration // what the requester asked for
	Created   time.Time
}

// Item is one Resource as the TUI shows it.
type Item struct {
	Name    string
	Kind    string // "ssh", "tcp" or "kube"
	Project string
	Address string
	Ports   []int
	Labels  map[string]string
	// Reachable is false when the user may see the Resource but not reach
	// it: the TUI shows it locked, with how to request access.
	Reachable bool
	// StepUp, when set, says that sessions to the Resource need a step-up
	// the user's logins do not give now, and what satisfies it ("needs a
	// strong login ... within 10m; your last strong login: ..."). The TUI
	// marks the Resource; enter steps up (see StepUpper).
	StepUp string
}

// Session is one of the user's live sessions.
type Session struct {
	ID, Kind, Resource, Target string
	Opened, Expires            time.Time
	BytesIn, BytesOut          int64
}

// Window is a terminal size in cells.
type Window struct{ Width, Height int }

// Options are what Run needs from the SSH session.
type Options struct {
	In  io.Reader // the session's stdin; Run does not close it
	Out io.Writer // the session's stdout (the PTY)

	Width, Height int           // the initial window size
	Resize        <-chan Window // window changes; may be nil

	Env  []string // the client's environment, e.g. TERM, NO_COLOR
	User string   // who is logged in, for the header
	// Host is how users reach the bastion, e.g. "ssh -p 2222 localhost";
	// the TUI prints exact commands with it.
	Host string

	Backend Backend

	// Expanded are the kube Resources whose workloads show at once, and
	// Selected the pod to select there: where the user was before a pod's
	// shell or logs (Choice.Expanded, Choice.Pod).
	Expanded []string
	Selected PodRef
	Named    map[string][]string // namespaces named there (Choice.Named)
	// Notice, when set, shows as an error until the first key: why what
	// the user picked last time did not open.
	Notice string
}

// Choice is what the user picked.
type Choice struct {
	// Open is the name of a reachable ssh Resource the user pressed enter
	// on; "" when they quit.
	Open string
	// Pod is the pod the user pressed enter (a shell) or l (Logs) on.
	Pod  PodRef
	Logs bool
	// Expanded are the kube Resources whose workloads showed, and Named
	// the namespaces the user named under them.
	Expanded []string
	Named    map[string][]string
}
