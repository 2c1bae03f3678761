package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// Commands and shells on a Debian sshd target that trusts only the
// bastion's user CA (the user's own key is not authorised there).
func TestExecOnHostThroughTheBastionCA(t *testing.T) {
	b, alice, bob := withBob(t)
	r := b.SSH(bob, "ca")
	mustOK(t, r, "ca")
	caLine := strings.TrimSpace(r.Stdout)
	if !strings.HasPrefix(caLine, "ssh-ed25519 ") {
		t.Fatalf("ca printed %q", caLine)
	}
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: caLine})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add")

	// bob cannot see host-1: refused as a name that is no Resource.
	r = b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "echo", "hi"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !strings.Contains(r.Stderr, `unknown command "host-1"`) {
		t.Fatalf("without view: exit %d stderr %q", r.Code, r.Stderr)
	}
	// Once he may see it, the refusal says what is missing and how to ask.
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#view@user:bob"), "grant view")
	r = b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "echo", "hi"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !harness.Contains(r.Stderr, "refused", "user:bob lacks act on resource:host-1", "request create host-1") {
		t.Fatalf("without act: exit %d stderr %q", r.Code, r.Stderr)
	}
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant")

	r = b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-tt"}, Args: []string{"host-1", "--", "echo", "hi"}})
	mustOK(t, r, "ssh -tt bastion host-1 -- echo hi")
	if strings.TrimSpace(r.Stdout) != "hi" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	r = b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "exit", "3"}})
	if r.Code != 3 {
		t.Fatalf("exit status not passed through: %d (%q)", r.Code, r.Stderr)
	}
	r = b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "cat"}, Stdin: "piped-through\n"})
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "piped-through" {
		t.Fatalf("stdin not passed: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	var opens, closes int
	for _, e := range auditEvents(t, b, alice, "--action", "shell.") {
		switch e.Action {
		case "shell.open":
			if e.Actor == "bob" && e.Details["login"] == "root" && e.Details["session"] != "" {
				opens++
			}
		case "shell.close":
			closes++
		}
	}
	if opens != 3 || closes != 3 {
		t.Fatalf("shell.open/close = %d/%d, want 3/3", opens, closes)
	}

	// Every shell was recorded; the -tt one holds "hi".
	r = b.SSH(bob, "recordings", "list", "-o", "json")
	mustOK(t, r, "recordings list")
	var recs []store.Session
	if err := json.Unmarshal([]byte(r.Stdout), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("recordings list: %v %s", err, r.Stdout)
	}
	var found bool
	for _, rec := range recs {
		cast := b.SSH(bob, "recordings", "export", rec.Recording)
		mustOK(t, cast, "recordings export")
		lines := strings.Split(strings.TrimSpace(cast.Stdout), "\n")
		var hdr map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil || hdr["version"] != float64(2) {
			t.Fatalf("not asciicast v2: %q", lines[0])
		}
		for _, l := range lines[1:] {
			var ev []any
			if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
				t.Fatalf("bad event line %q", l)
			}
		}
		if strings.Contains(cast.Stdout, `"hi\r\n"`) {
			found = true
			play := b.SSH(bob, "recordings", "play", rec.Recording, "--speed", "10")
			mustOK(t, play, "recordings play")
			if !strings.Contains(play.Stdout, "hi") {
				t.Fatalf("replay lacks hi: %q", play.Stdout)
			}
		}
	}
	if !found {
		t.Fatal("no recording holds the output hi")
	}
	// Someone else's recordings are not bob's to read.
	if r := b.SSH(bob, "recordings", "export", "s-doesnotexist"); r.Code == 0 {
		t.Fatal("export of a missing recording succeeded")
	}
}

// `ssh bastion HOST -- CMD` hands CMD to the target byte for byte, as
// plain sshd would, and a normal end writes nothing on stderr.
func TestExecOnHostKeepsQuoting(t *testing.T) {
	b, alice, bob := withBob(t)
	caLine := strings.TrimSpace(b.SSH(bob, "ca").Stdout)
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: caLine})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant")
	for _, c := range []struct{ cmd, want string }{
		{`echo 'a    b'`, "a    b\n"},
		{`printf '%s|' 'x y' z`, "x y|z|"},
		{"printf '%s' \"tab\there\"", "tab\there"},
		{`x=1; echo "$x" '$x'`, "1 $x\n"},
		{`d=$(mktemp -d) && touch $d/g1 $d/g2 && cd $d && echo g* && rm -r $d`, "g1 g2\n"},
		{"echo trailing\n", "trailing\n"},
	} {
		r := b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", c.cmd}})
		if r.Code != 0 || r.Stdout != c.want {
			t.Errorf("%q: exit %d, stdout %q, want %q (stderr %q)", c.cmd, r.Code, r.Stdout, c.want, r.Stderr)
		}
		if strings.Contains(r.Stderr, "bastion:") {
			t.Errorf("%q: a normal end wrote on stderr: %q", c.cmd, r.Stderr)
		}
	}
}
