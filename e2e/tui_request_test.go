package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// tuiPane opens the front door for k in a real 80x24 terminal.
func tuiPane(t *testing.T, b *harness.Bastion, k harness.Key) *harness.Pane {
	t.Helper()
	argv := append([]string{"ssh", "-tt"}, b.SSHArgs(k)...)
	return harness.StartPane(t, 80, 24, nil, append(argv, "127.0.0.1")...)
}

// Just-in-time access in the TUI, as people use it: alice files a request
// from a locked Resource, bob sees it counted, opens his queue and
// approves it, and host-2 unlocks for alice.
func TestTUIRequestFiledAndApproved(t *testing.T) {
	b, root := rootBastion(t)
	alice, bob := addUser(t, b, root, "alice"), addUser(t, b, root, "bob")
	mustOK(t, b.SSH(root, "resources", "add", "host-2", "--kind", "ssh", "--address", "127.0.0.1:1", "--project", "payments"), "resources add host-2")
	mustOK(t, b.SSH(root, "tuples", "add", "project:payments#member@user:alice", "project:payments#reviewer@user:bob"), "tuples add")

	// alice sees host-2 locked; enter opens the request form.
	ap := tuiPane(t, b, alice)
	ap.WaitText(20*time.Second, "host-2", "request create host-2")
	ap.Send("Enter")
	ap.WaitText(10*time.Second, "host-2 is locked", "Reason", "TTL", "1h")
	// An empty reason is refused in the form.
	ap.Send("Enter")
	ap.WaitText(10*time.Second, "a reason is required")
	ap.Type("INC-7")
	ap.Send("Enter") // on to the TTL
	ap.Send("C-u")
	ap.Type("30m")
	ap.Send("Enter")
	m := ap.WaitMatch(20*time.Second, regexp.MustCompile(`request (r-[0-9a-z]+) filed for host-2; a reviewer must approve it`))
	id := m[1]

	// bob, a reviewer of payments, sees it counted and decides it.
	bp := tuiPane(t, b, bob)
	bp.WaitText(20*time.Second, "1 pending", "Requests")
	bp.Send("r")
	s := bp.WaitText(20*time.Second, "Requests to review: 1", id, "alice", "host-2", "INC-7")
	if !strings.Contains(s, "for 30m") {
		t.Fatalf("the queue does not show the TTL asked for:\n%s", s)
	}
	bp.Send("a")
	bp.WaitText(10*time.Second, "approve "+id+", reason (optional):")
	bp.Type("LGTM INC-7")
	bp.Send("Enter")
	bp.WaitText(20*time.Second, "approved "+id+": alice on host-2", "Requests to review: 0")
	bp.WaitFor("the pending count to go", 20*time.Second, func(s string) bool { return !strings.Contains(s, "1 pending") })

	// The grant is real: policy says act, the request is approved by bob.
	r := b.SSH(root, "check", "user:alice", "act", "resource:host-2")
	if r.Code != 0 || !strings.Contains(r.Stdout, "allowed") {
		t.Fatalf("check alice act host-2 after approval: exit %d %s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = b.SSH(alice, "request", "list", "-o", "json")
	mustOK(t, r, "request list")
	var rs []store.AccessRequest
	if err := json.Unmarshal([]byte(r.Stdout), &rs); err != nil {
		t.Fatalf("request list -o json: %v\n%s", err, r.Stdout)
	}
	if len(rs) != 1 || rs[0].ID != id || rs[0].State != "approved" || rs[0].Reviewer != "bob" ||
		rs[0].Reason != "INC-7" || rs[0].ReviewReason != "LGTM INC-7" || rs[0].TTL != 30*time.Minute {
		t.Fatalf("alice's requests: %+v", rs)
	}
	var approved int
	for _, e := range auditEvents(t, b, root, "--action", "access_request.approved") {
		if e.Actor == "bob" && e.Details["request"] == id {
			approved++
		}
	}
	if approved != 1 {
		t.Fatalf("access_request.approved by bob for %s: %d events, want 1", id, approved)
	}

	// alice reloads: host-2 is hers to open now.
	ap.Send("C-r")
	ap.WaitFor("host-2 unlocked", 20*time.Second, func(s string) bool {
		return strings.Contains(s, "-t host-2") && !strings.Contains(s, "request create host-2")
	})

	for who, p := range map[string]*harness.Pane{"alice": ap, "bob": bp} {
		p.Send("q")
		if code := p.ExitCode(20 * time.Second); code != 0 {
			t.Fatalf("%s: q: ssh exited %d:\n%s", who, code, p.Screen())
		}
	}
}

// A reviewer never sees their own request in the queue; another reviewer
// denies it from hers, with a reason the requester can read.
func TestTUIRequestDeniedFromTheQueue(t *testing.T) {
	b, root := rootBastion(t)
	bob, carol := addUser(t, b, root, "bob"), addUser(t, b, root, "carol")
	mustOK(t, b.SSH(root, "resources", "add", "host-2", "--kind", "ssh", "--address", "127.0.0.1:1", "--project", "payments"), "resources add host-2")
	mustOK(t, b.SSH(root, "tuples", "add", "project:payments#reviewer@user:bob", "project:payments#member@user:bob",
		"project:payments#reviewer@user:carol", "project:payments#member@user:carol"), "tuples add")

	// bob, a reviewer himself, files a request; it is not his to review.
	bp := tuiPane(t, b, bob)
	bp.WaitText(20*time.Second, "host-2")
	bp.Send("Enter")
	bp.WaitText(10*time.Second, "host-2 is locked")
	bp.Type("deploy the fix")
	bp.Send("Enter")
	bp.Send("Enter") // the default TTL
	id := bp.WaitMatch(20*time.Second, regexp.MustCompile(`request (r-[0-9a-z]+) filed for host-2`))[1]
	bp.Send("r")
	bp.WaitText(20*time.Second, "Requests to review: 0")
	if s := bp.Screen(); strings.Contains(s, "1 pending") || strings.Contains(s, id) {
		t.Fatalf("bob's own request is in his queue:\n%s", s)
	}

	// carol denies it from her queue.
	cp := tuiPane(t, b, carol)
	cp.WaitText(20*time.Second, "1 pending")
	cp.Send("r")
	cp.WaitText(20*time.Second, "Requests to review: 1", id, "bob", "deploy the fix")
	cp.Send("d")
	cp.WaitText(10*time.Second, "deny "+id+", reason (optional):")
	cp.Type("use the runbook")
	cp.Send("Enter")
	cp.WaitText(20*time.Second, "denied "+id+": bob on host-2", "Requests to review: 0")

	r := b.SSH(bob, "request", "list", "-o", "json")
	mustOK(t, r, "request list")
	var rs []store.AccessRequest
	if err := json.Unmarshal([]byte(r.Stdout), &rs); err != nil {
		t.Fatalf("request list -o json: %v\n%s", err, r.Stdout)
	}
	if len(rs) != 1 || rs[0].ID != id || rs[0].State != "denied" || rs[0].Reviewer != "carol" || rs[0].ReviewReason != "use the runbook" {
		t.Fatalf("bob's requests: %+v", rs)
	}
	if r := b.SSH(root, "check", "user:bob", "act", "resource:host-2"); r.Code != 1 {
		t.Fatalf("bob has act after a denied request: exit %d %s", r.Code, r.Stdout)
	}
}
