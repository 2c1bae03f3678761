package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// The tests of this file write hostile text where others read it: a login
// name (anyone who connects), a request's reason (any requester), a
// Resource's label (any project admin). Whatever a terminal could act on
// must reach admins' and reviewers' terminals escaped (\x1b, \n, \u202e),
// while -o json keeps the exact string.

// escLogin retitles and clears the reader's terminal.
const escLogin = "x\x1b]0;pwned\x07\x1b[2J"

// bidiLogin reads "xexe.pdf" in a terminal that honours the override.
const bidiLogin = "x\u202efdp.exe"

// noRawControls fails when out holds a raw ESC, CR, BEL, C1 CSI or bidi
// override: none of our own output has them.
func noRawControls(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\r", "\x07", "\u009b", "\u202e"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s: a raw %q reached the terminal:\n%q", what, bad, out)
		}
	}
}

// escaped is how the sanitiser shows s.
func escaped(s string) string {
	r := strings.NewReplacer("\x1b", `\x1b`, "\x07", `\x07`, "\r", `\r`, "\n", `\n`, "\t", `\t`, "\u202e", `\u202e`, "\u009b", `\u009b`)
	return r.Replace(s)
}

// hostileLogin tries to log in as name with an unregistered key. The real
// ssh refuses control characters in -l but takes them from a config
// file's User; should a client refuse that too, x/crypto/ssh makes the
// attempt (it is the server's side that is under test).
func hostileLogin(t *testing.T, b *harness.Bastion, key harness.Key, name string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	body := fmt.Sprintf("Host target\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  HostKeyAlias bastion-under-test\n"+
		"  UserKnownHostsFile %s\n  StrictHostKeyChecking accept-new\n  IdentityFile %s\n  IdentitiesOnly yes\n"+
		"  IdentityAgent none\n  BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 20\n", b.Port, name, b.KnownHosts, key.Path)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh", "-F", cfg, "target", "whoami").CombinedOutput()
	if err == nil {
		t.Fatalf("an unregistered key logged in as %q: %s", name, out)
	}
	if !strings.Contains(string(out), "invalid characters") {
		return
	}
	t.Logf("ssh refused the name client-side (%s); making the attempt with x/crypto/ssh", strings.TrimSpace(string(out)))
	c, err := gossh.Dial("tcp", net.JoinHostPort("127.0.0.1", b.Port), &gossh.ClientConfig{User: name,
		Auth: []gossh.AuthMethod{gossh.PublicKeys(loadSigner(t, key))}, HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout: 20 * time.Second})
	if err == nil {
		_ = c.Close()
		t.Fatalf("an unregistered key logged in as %q", name)
	}
}

// TestBoundaryTextLoginNames: the names of failed logins reach `audit`
// escaped; -o json has the exact name, or, where the server refused the
// name before authentication and kept only its length, not a byte of it.
func TestBoundaryTextLoginNames(t *testing.T) {
	b, alice := admin(t, "")
	stranger := harness.NewKey(t, t.TempDir(), "stranger")
	hostileLogin(t, b, stranger, escLogin)
	hostileLogin(t, b, stranger, bidiLogin)

	var escEvent, bidiEvent *store.Event
	waitFor(t, 20*time.Second, "both failed logins to be audited", func() bool {
		escEvent, bidiEvent = nil, nil
		for _, e := range auditEvents(t, b, alice, "--action", "auth.fail") {
			e := e
			switch {
			case e.Actor == escLogin || (e.Actor == "" && e.Details["login_bytes"] == fmt.Sprint(len(escLogin))):
				escEvent = &e
			case e.Actor == bidiLogin:
				bidiEvent = &e
			}
		}
		return escEvent != nil && bidiEvent != nil
	})

	table := b.SSH(alice, "audit", "--action", "auth.fail")
	mustOK(t, table, "audit")
	noRawControls(t, "audit", table.Stdout+table.Stderr)
	if !strings.Contains(table.Stdout, escaped(bidiLogin)) {
		t.Errorf("audit does not show the bidi login escaped as %q:\n%s", escaped(bidiLogin), table.Stdout)
	}
	if escEvent.Actor == escLogin && !strings.Contains(table.Stdout, escaped(escLogin)) {
		t.Errorf("audit does not show the ESC login escaped as %q:\n%s", escaped(escLogin), table.Stdout)
	}
	// -o json is exact: the name as sent (auditEvents decoded it), and no
	// raw control character in the bytes either.
	js := b.SSH(alice, "audit", "--action", "auth.fail", "-o", "json")
	mustOK(t, js, "audit -o json")
	noRawControls(t, "audit -o json", js.Stdout)
	if escEvent.Actor != escLogin && strings.Contains(js.Stdout, "pwned") {
		t.Errorf("the refused name was kept after all:\n%s", js.Stdout)
	}
}

// TestBoundaryTextRequestReason: a requester's reason with ESC sequences, a
// CR LF and a bidi override reaches the reviewer's `request list` and
// `request show` and the admin's `audit` escaped, on one line.
func TestBoundaryTextRequestReason(t *testing.T) {
	b, root := rootBastion(t)
	alice, bob := addUser(t, b, root, "alice"), addUser(t, b, root, "bob")
	mustOK(t, b.SSH(root, "resources", "add", "web-1", "--kind", "tcp", "--address", "192.0.2.10:80", "--project", "payments"), "resources add")
	mustOK(t, b.SSH(root, "tuples", "add", "project:payments#member@user:alice", "project:payments#reviewer@user:bob"), "tuples")

	reason := "INC-7 " + escLogin + "\r\nweb-1 approved by root\u202eend"
	// The server splits the command line like a shell: single quotes keep
	// every byte of the reason.
	mustOK(t, b.SSH(alice, "request", "create", "web-1", "--reason", "'"+reason+"'"), "request create")

	for _, who := range []struct {
		name string
		key  harness.Key
	}{{"alice", alice}, {"bob", bob}} {
		r := b.SSH(who.key, "request", "list")
		mustOK(t, r, "request list as "+who.name)
		noRawControls(t, "request list as "+who.name, r.Stdout+r.Stderr)
		if !strings.Contains(r.Stdout, escaped(reason)) {
			t.Errorf("request list as %s does not show the reason escaped as %q:\n%s", who.name, escaped(reason), r.Stdout)
		}
		if n := strings.Count(strings.TrimSpace(r.Stdout), "\n"); n != 1 {
			t.Errorf("request list as %s: the reason's line break forged a row (%d lines):\n%s", who.name, n+1, r.Stdout)
		}
		js := b.SSH(who.key, "request", "list", "-o", "json")
		mustOK(t, js, "request list -o json")
		noRawControls(t, "request list -o json", js.Stdout)
		var rs []store.AccessRequest
		if err := json.Unmarshal([]byte(js.Stdout), &rs); err != nil || len(rs) != 1 {
			t.Fatalf("request list -o json: %v\n%s", err, js.Stdout)
		}
		if rs[0].Reason != reason {
			t.Errorf("-o json changed the reason: %q, want %q", rs[0].Reason, reason)
		}
		show := b.SSH(who.key, "request", "show", rs[0].ID)
		mustOK(t, show, "request show")
		noRawControls(t, "request show", show.Stdout)
	}
	a := b.SSH(root, "audit", "--action", "access_request.")
	mustOK(t, a, "audit")
	noRawControls(t, "audit", a.Stdout)
	if !strings.Contains(a.Stdout, escaped(reason)) {
		t.Errorf("audit does not show the reason escaped:\n%s", a.Stdout)
	}
}

// TestBoundaryTextResourceLabel: a project admin's label with ESC
// sequences, a tab, a C1 CSI and a bidi override reaches `resources list`
// (the domain admin's and a member's) and the TUI picker escaped.
func TestBoundaryTextResourceLabel(t *testing.T) {
	b, root := rootBastion(t)
	mallory, carol := addUser(t, b, root, "mallory"), addUser(t, b, root, "carol")
	mustOK(t, b.SSH(root, "tuples", "add", "project:sandbox#admin@user:mallory", "project:sandbox#member@user:carol"), "tuples")
	value := "red" + escLogin + "\tcol\u009b2J\u202eend"
	mustOK(t, b.SSH(mallory, "resources", "add", "lab", "--kind", "tcp", "--address", "192.0.2.30:80", "--project", "sandbox",
		"--label", "'env="+value+"'"), "mallory adds lab")

	for _, who := range []struct {
		name string
		key  harness.Key
	}{{"root", root}, {"mallory", mallory}, {"carol", carol}} {
		r := b.SSH(who.key, "resources", "list")
		mustOK(t, r, "resources list as "+who.name)
		noRawControls(t, "resources list as "+who.name, r.Stdout+r.Stderr)
		if !strings.Contains(r.Stdout, "env="+escaped(value)) {
			t.Errorf("resources list as %s does not show the label escaped as %q:\n%s", who.name, escaped(value), r.Stdout)
		}
		js := b.SSH(who.key, "resources", "list", "-o", "json")
		mustOK(t, js, "resources list -o json")
		noRawControls(t, "resources list -o json", js.Stdout)
		var rs []store.Resource
		if err := json.Unmarshal([]byte(js.Stdout), &rs); err != nil || len(rs) != 1 {
			t.Fatalf("resources list -o json: %v\n%s", err, js.Stdout)
		}
		if rs[0].Labels["env"] != value {
			t.Errorf("-o json changed the label: %q, want %q", rs[0].Labels["env"], value)
		}
	}
	show := b.SSH(carol, "resources", "show", "lab")
	mustOK(t, show, "resources show")
	noRawControls(t, "resources show", show.Stdout)

	// The picker, in a real terminal: had the ESC sequences reached it,
	// tmux would have acted on them and the escaped text would not show.
	argv := append([]string{"ssh", "-tt"}, b.SSHArgs(carol)...)
	pane := harness.StartPane(t, 200, 30, nil, append(argv, "127.0.0.1")...)
	s := pane.WaitText(20*time.Second, "lab", "LABELS", `\x1b]0;pwned\x07\x1b[2J`)
	if !strings.Contains(s, `\u009b2J\u202eend`) {
		t.Errorf("the picker does not show the C1 and bidi controls escaped:\n%s", s)
	}
	pane.Send("q")
}
