package e2e

import (
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// An unregistered key is told why, in a banner OpenSSH shows before it
// disconnects, naming only the key's fingerprint and how to get it
// registered; a client that then logs in with a registered key is not
// refused.
func TestUnregisteredKeyIsToldWhy(t *testing.T) {
	b, alice := admin(t, "")
	mustOK(t, b.SSH(alice, "resources", "add", "web-1", "--kind", "ssh", "--address", "192.0.2.10:22"), "resources add web-1")
	stranger := harness.NewKey(t, t.TempDir(), "stranger")

	// BatchMode (the harness's default) and OpenSSH's default LogLevel.
	r := b.SSHRun(harness.Run{Key: &stranger, Options: []string{"LogLevel=INFO"}, Args: []string{"whoami"}})
	if r.Code == 0 {
		t.Fatalf("an unregistered key logged in:\n%s", r.Combined())
	}
	if !harness.Contains(r.Stderr, "bastion: key "+stranger.Fingerprint+" is not registered here", "keys add", "Permission denied") {
		t.Fatalf("the refusal does not say why, before the client gives up:\n%s", r.Stderr)
	}
	// Nothing an unauthenticated client should learn.
	for _, secret := range []string{"alice", "web-1"} {
		if strings.Contains(r.Stderr, secret) {
			t.Fatalf("the refusal of an unauthenticated client names %q:\n%s", secret, r.Stderr)
		}
	}
	// The unregistered key first, then alice's: alice logs in.
	r = b.SSHRun(harness.Run{Key: &stranger, Flags: []string{"-i", alice.Path}, Options: []string{"LogLevel=INFO"}, Args: []string{"whoami"}})
	mustOK(t, r, "whoami with an unregistered key before a registered one")
	if !strings.Contains(r.Stdout, "alice") {
		t.Fatalf("whoami: %q", r.Stdout)
	}
}

// A refusal about a Resource that the user may not even view reads exactly
// like the refusal for a name that does not exist, in every place that
// takes a Resource name; once the user may view it, the refusal names it
// and how to ask for it.
func TestRefusalsForUnseenResourcesReadLikeMissingOnes(t *testing.T) {
	b, alice := admin(t, "")
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "resources", "add", "prod", "--kind", "tcp", "--address", "192.0.2.50:5432", "--project", "payments"), "resources add prod")
	mustOK(t, b.SSH(alice, "resources", "add", "prod-ssh", "--kind", "ssh", "--address", "192.0.2.51:22", "--project", "payments"), "resources add prod-ssh")

	// same runs what as bob for an existing name and a missing one, and
	// fails unless the two outputs are the same once the names are.
	same := func(what string, run func(name string) harness.Result, existing string) harness.Result {
		t.Helper()
		const missing = "nosuch"
		a, m := run(existing), run(missing)
		if a.Code != m.Code || strings.ReplaceAll(a.Combined(), existing, missing) != m.Combined() {
			t.Fatalf("%s: the refusal for %s, which bob cannot view, differs from the one for a missing name:\n%s: exit %d\n%s\n%s: exit %d\n%s",
				what, existing, existing, a.Code, a.Combined(), missing, m.Code, m.Combined())
		}
		if a.Code == 0 {
			t.Fatalf("%s %s: not refused:\n%s", what, existing, a.Combined())
		}
		return a
	}
	forward := func(port string) func(string) harness.Result {
		return func(name string) harness.Result {
			return b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-W", name + ":" + port}, Options: []string{"LogLevel=INFO"}})
		}
	}
	same("ssh -W on an allowed port", forward("5432"), "prod")
	same("ssh -W on a port the Resource does not allow", forward("9999"), "prod")
	same("ssh bastion HOST -- cmd", func(name string) harness.Result { return b.SSH(bob, name, "--", "true") }, "prod-ssh")
	same("resources rm", func(name string) harness.Result { return b.SSH(bob, "resources", "rm", name) }, "prod")
	same("resources show", func(name string) harness.Result { return b.SSH(bob, "resources", "show", name) }, "prod")
	same("request create", func(name string) harness.Result {
		return b.SSH(bob, "request", "create", name, "--reason", "look")
	}, "prod")

	// Once bob may view prod, the refusal names it and how to ask.
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#view@user:bob"), "tuples add view")
	r := forward("5432")("prod")
	if r.Code == 0 || !harness.Contains(r.Stderr, "lacks act on resource:prod", "request create prod") {
		t.Fatalf("refusal for a Resource bob may view:\n%s", r.Stderr)
	}
}

// The words after --reason are its text, as typed in a shell: ssh joins
// them with spaces, and the bastion takes them back together.
func TestReasonWithSpacesSurvivesSSH(t *testing.T) {
	b, alice := admin(t, "")
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "resources", "add", "web-1", "--kind", "tcp", "--address", "192.0.2.10:80", "--project", "shop"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "project:shop#viewer@user:bob"), "bob may request in shop")
	// The shell's quotes are gone once ssh joins the words: what arrives
	// is `request create web-1 --reason INC-7 look at logs --ttl 30m`.
	mustOK(t, b.SSH(bob, "request", "create", "web-1", "--reason", "INC-7 look at logs", "--ttl", "30m"), "request create")
	r := b.SSH(bob, "request", "list", "-o", "json")
	mustOK(t, r, "request list")
	if !strings.Contains(r.Stdout, `"INC-7 look at logs"`) {
		t.Fatalf("the reason was not kept whole:\n%s", r.Stdout)
	}
	// Names after --reason would be taken as its text: the error says
	// what to do.
	r = b.SSH(bob, "request", "create", "--reason", "INC-8", "web-1")
	if r.Code == 0 || !strings.Contains(r.Stderr, "name the Resources first") {
		t.Fatalf("names after --reason: exit %d\n%s", r.Code, r.Combined())
	}
}
