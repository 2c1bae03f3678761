package e2e

import (
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// live is how long the TUI may take to show a change made from another
// connection, with no key pressed in it.
const live = 10 * time.Second

// reachable reports whether the picker shows name reachable: its shell
// command, and no request command.
func reachable(name string) func(string) bool {
	return func(s string) bool {
		return strings.Contains(s, "-t "+name) && !strings.Contains(s, "request create "+name)
	}
}

// The TUI follows grants by itself: a tuple an admin adds and a request a
// reviewer approves, each from another connection, unlock the Resource in
// an open picker without a key press; enter then opens the shell, and y
// prints the command alone on a line.
func TestTUIUnlocksWithoutAKey(t *testing.T) {
	b, root := rootBastion(t)
	alice, bob := addUser(t, b, root, "alice"), addUser(t, b, root, "bob")
	ca := b.SSH(root, "ca")
	mustOK(t, ca, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(ca.Stdout)})
	for _, name := range []string{"host-2", "host-3"} {
		mustOK(t, b.SSH(root, "resources", "add", name, "--kind", "ssh", "--address", sshd.Addr, "--login", "root", "--project", "payments"),
			"resources add "+name)
	}
	mustOK(t, b.SSH(root, "tuples", "add", "project:payments#member@user:alice", "project:payments#reviewer@user:bob"), "tuples add")

	ap := tuiPane(t, b, alice)
	ap.WaitText(20*time.Second, "host-2", "host-3", "ctrl-r refresh", "y command")

	// An admin grants host-3 from another connection.
	ap.Type("host-3")
	ap.WaitText(live, "request create host-3")
	mustOK(t, b.SSH(root, "tuples", "add", "resource:host-3#act@user:alice"), "grant host-3")
	ap.WaitFor("host-3 reachable without a key", live, reachable("host-3"))
	ap.Send("C-u")

	// alice asks for host-2; bob approves it over ssh, not in a TUI.
	ap.Type("host-2")
	ap.WaitText(live, "request create host-2")
	ap.Send("Enter")
	ap.WaitText(live, "host-2 is locked", "Reason")
	ap.Type("INC-9")
	ap.Send("Enter")
	ap.Send("Enter") // the default TTL
	id := ap.WaitMatch(live, regexp.MustCompile(`request (r-[0-9a-z]+) filed for host-2`))[1]
	ap.WaitText(live, "Request "+id+" is pending: host-2 unlocks here once approved.")
	mustOK(t, b.SSH(bob, "request", "approve", id, "--reason", "ok"), "request approve")
	s := ap.WaitFor("host-2 reachable without a key", live, reachable("host-2"))
	if !strings.Contains(s, "host-2 is reachable now") {
		t.Fatalf("the picker does not say host-2 unlocked:\n%s", s)
	}

	// y: the command alone on a line, as the detail pane has it.
	ap.Send("C-y")
	port := regexp.MustCompile(`ssh -p (\d+) localhost`).FindStringSubmatch(s)
	if port == nil {
		t.Fatalf("no bastion command on the screen:\n%s", s)
	}
	want := "ssh -p " + port[1] + " localhost -t host-2"
	ap.WaitFor("y's line "+want, live, func(s string) bool { return hasLine(s, want) && strings.Contains(s, "to copy") })
	ap.Send("Escape")
	ap.WaitFor("the command hidden", live, func(s string) bool { return !strings.Contains(s, "to copy") })

	// enter opens the shell, not the request form.
	ap.Send("Enter")
	s = ap.WaitFor("the shell on host-2", 20*time.Second, func(s string) bool {
		return strings.Contains(s, "connecting to host-2") || strings.Contains(s, "host-2 is locked")
	})
	if strings.Contains(s, "host-2 is locked") {
		t.Fatalf("enter on the approved host-2 opened the request form again:\n%s", s)
	}
	time.Sleep(time.Second) // let the remote shell print its prompt
	ap.Type("echo hello")
	ap.Send("Enter")
	ap.WaitFor("hello from host-2", 20*time.Second, func(s string) bool { return hasLine(s, "hello") })
	ap.Type("exit")
	ap.Send("Enter")
	ap.WaitText(20*time.Second, "NAME", "host-2")
	ap.Send("q")
	if code := ap.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d:\n%s", code, ap.Screen())
	}
}

// The reviewer's pending count follows requests filed and decided from
// other connections, with no key pressed in the TUI.
func TestTUIPendingCountFollows(t *testing.T) {
	b, root := rootBastion(t)
	alice, bob := addUser(t, b, root, "alice"), addUser(t, b, root, "bob")
	carol := addUser(t, b, root, "carol")
	mustOK(t, b.SSH(root, "resources", "add", "host-2", "--kind", "ssh", "--address", "127.0.0.1:1", "--project", "payments"), "resources add")
	mustOK(t, b.SSH(root, "tuples", "add", "project:payments#member@user:alice", "project:payments#member@user:carol",
		"project:payments#reviewer@user:bob"), "tuples add")

	bp := tuiPane(t, b, bob)
	bp.WaitText(20*time.Second, "Requests", "q quit")
	if s := bp.Screen(); strings.Contains(s, "pending") {
		t.Fatalf("a count before any request:\n%s", s)
	}
	create := func(k harness.Key, who string) string {
		r := b.SSH(k, "request", "create", "host-2", "--reason", "INC-"+who, "-o", "json")
		mustOK(t, r, who+": request create")
		var req store.AccessRequest
		if err := json.Unmarshal([]byte(r.Stdout), &req); err != nil || req.ID == "" {
			t.Fatalf("request create -o json: %v\n%s", err, r.Stdout)
		}
		return req.ID
	}
	first := create(alice, "alice")
	bp.WaitText(live, "1 pending")
	create(carol, "carol")
	bp.WaitText(live, "2 pending")
	mustOK(t, b.SSH(bob, "request", "deny", first, "--reason", "no"), "request deny")
	bp.WaitFor("the count back to 1", live, func(s string) bool {
		return strings.Contains(s, "1 pending") && !strings.Contains(s, "2 pending")
	})
	bp.Send("q")
	if code := bp.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d", code)
	}
}

// The Sessions page at 100 columns follows sessions opened elsewhere and
// shows their ids and kinds whole, as `sessions -o json` has them; y
// prints the command that ends the selected one, and it works.
func TestTUISessionsPageWholeIDs(t *testing.T) {
	b, root := rootBastion(t)
	bob := addUser(t, b, root, "bob")
	echo := harness.StartEcho(t)
	_, echoPort, _ := net.SplitHostPort(echo)
	mustOK(t, b.SSH(root, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", echoPort), "resources add")
	mustOK(t, b.SSH(root, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")

	argv := append([]string{"ssh", "-tt"}, b.SSHArgs(bob)...)
	bp := harness.StartPane(t, 100, 30, nil, append(argv, "127.0.0.1")...)
	bp.WaitText(20*time.Second, "echo-svc")
	bp.Send("Tab")
	bp.WaitText(live, "Your live sessions: 0")

	// A forward opened from another connection shows by itself.
	f := b.StartForward(bob, "echo-svc:"+echoPort)
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echo(t, c, []byte("ping"))
	r := b.SSH(bob, "sessions", "-o", "json")
	mustOK(t, r, "sessions -o json")
	var ss []store.Session
	if err := json.Unmarshal([]byte(r.Stdout), &ss); err != nil || len(ss) != 1 {
		t.Fatalf("sessions -o json: %v\n%s", err, r.Stdout)
	}
	id := ss[0].ID
	s := bp.WaitText(live, "Your live sessions: 1", id)
	row := regexp.MustCompile(`(?m)^> (\S+)\s+(\S+)\s+echo-svc`).FindStringSubmatch(s)
	if row == nil || row[1] != id || row[2] != ss[0].Kind || ss[0].Kind != "forward" {
		t.Fatalf("the row does not show id %s and kind %s whole (%q):\n%s", id, ss[0].Kind, row, s)
	}

	bp.Type("y")
	port := regexp.MustCompile(`ssh -p (\d+) localhost`).FindStringSubmatch(s)
	if port == nil {
		t.Fatalf("no bastion command on the screen:\n%s", s)
	}
	kill := "ssh -p " + port[1] + " localhost sessions kill " + id
	bp.WaitFor("y's line "+kill, live, func(s string) bool { return hasLine(s, kill) })

	// The printed command, run as printed, ends the session; the page
	// follows.
	mustOK(t, b.SSH(bob, "sessions", "kill", id), "sessions kill")
	harness.WaitClosed(t, c, 20*time.Second)
	bp.Send("Escape")
	bp.WaitText(live, "Your live sessions: 0")
	bp.Send("q")
	if code := bp.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d", code)
	}
}

// On two replicas sharing etcd, an approval made through replica A
// unlocks the Resource in a TUI served by replica B, with no key pressed:
// B's TUIs follow the shared feed, after B's own tuple cache.
func TestTUIFollowsAnotherReplica(t *testing.T) {
	bs, admin, _ := replicas(t, 2)
	a, b := bs[0], bs[1]
	carol, bob := addUser(t, a, admin, "carol"), addUser(t, a, admin, "bob")
	mustOK(t, a.SSH(admin, "resources", "add", "host-2", "--kind", "ssh", "--address", "127.0.0.1:1", "--project", "payments"), "resources add")
	mustOK(t, a.SSH(admin, "tuples", "add", "project:payments#member@user:carol", "project:payments#reviewer@user:bob"), "tuples add")

	cp := tuiPane(t, b, carol)
	cp.WaitText(20*time.Second, "host-2", "request create host-2")
	r := b.SSH(carol, "request", "create", "host-2", "--reason", "INC-11", "-o", "json")
	mustOK(t, r, "request create on B")
	var req store.AccessRequest
	if err := json.Unmarshal([]byte(r.Stdout), &req); err != nil || req.ID == "" {
		t.Fatalf("request create -o json: %v\n%s", err, r.Stdout)
	}
	mustOK(t, a.SSH(bob, "request", "approve", req.ID), "request approve on A")
	cp.WaitFor("host-2 reachable on B without a key", live, reachable("host-2"))
	cp.Send("q")
	if code := cp.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d", code)
	}
}
