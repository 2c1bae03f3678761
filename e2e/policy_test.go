package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// withBob starts a bastion with admin alice and a registered, non-admin
// user bob.
func withBob(t *testing.T) (*harness.Bastion, harness.Key, harness.Key) {
	t.Helper()
	b, alice := admin(t, "")
	return b, alice, addUser(t, b, alice, "bob")
}

// addUser has admin register user name with a fresh key, and returns it.
func addUser(t *testing.T, b *harness.Bastion, admin harness.Key, name string) harness.Key {
	t.Helper()
	k := harness.NewKey(t, t.TempDir(), name)
	mustOK(t, b.SSH(admin, "users", "add", name), "users add "+name)
	mustOK(t, b.SSHRun(harness.Run{Key: &admin, Args: []string{"keys", "add", name}, Stdin: k.Public}), "keys add "+name)
	return k
}

// rootBastion starts a bastion whose admin is root, so that tests may use
// alice, bob and carol as ordinary users.
func rootBastion(t *testing.T) (*harness.Bastion, harness.Key) {
	t.Helper()
	root := harness.NewKey(t, t.TempDir(), "root")
	return harness.Start(t, harness.Options{Admin: "root", AdminKeys: []harness.Key{root}}), root
}

func TestCheckExplainsTheGrantingPath(t *testing.T) {
	b, alice, _ := withBob(t)
	mustOK(t, b.SSH(alice, "resources", "add", "web-1", "--kind", "ssh", "--address", "127.0.0.1:22", "--project", "payments"), "resources add")
	mustOK(t, b.SSH(alice, "groups", "add-member", "ops", "carol"), "groups add-member")
	mustOK(t, b.SSH(alice, "tuples", "add", "project:payments#act@group:ops#member"), "tuples add")

	r := b.SSH(alice, "check", "user:carol", "act", "resource:web-1", "--explain")
	mustOK(t, r, "check carol")
	for _, want := range []string{"allowed", "group:ops#member", "project:payments"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("explanation lacks %q:\n%s", want, r.Stdout)
		}
	}
	r = b.SSH(alice, "check", "user:dave", "act", "resource:web-1", "--explain")
	if r.Code != 1 || !strings.HasPrefix(r.Stdout, "denied") {
		t.Fatalf("check dave: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "resource:web-1") || len(strings.Split(strings.TrimSpace(r.Stdout), "\n")) < 2 {
		t.Fatalf("denied explanation does not say what was tried:\n%s", r.Stdout)
	}
}

func TestExpiringTupleStopsGrantingWithoutRestart(t *testing.T) {
	b, alice, bob := withBob(t)
	mustOK(t, b.SSH(alice, "resources", "add", "web-1", "--kind", "ssh", "--address", "127.0.0.1:22"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:web-1#act@user:bob", "--expires", "2s"), "tuples add --expires")
	added := time.Now()
	// bob may check his own access.
	r := b.SSH(bob, "check", "user:bob", "act", "resource:web-1")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "allowed" {
		if time.Since(added) < 2*time.Second {
			t.Fatalf("fresh tuple does not grant: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
		}
		t.Logf("machine too slow to observe the grant inside 2s")
	}
	waitFor(t, 30*time.Second, "the tuple to expire", func() bool {
		r := b.SSH(bob, "check", "user:bob", "act", "resource:web-1")
		return r.Code == 1 && strings.TrimSpace(r.Stdout) == "denied"
	})
	if el := time.Since(added); el < 2*time.Second {
		t.Fatalf("tuple stopped granting after %s, before its 2s expiry", el)
	}
}

// conditionModel names a condition it does not define (conditions as
// such load: see conditions_test.go).
const conditionModel = `model
  schema 1.1

type user

type resource
  relations
    define act: [user with in_hours]
`

const syntaxErrorModel = `model
  schema 1.1

type user

type resource
  relations
    define act: [user] orr admin
`

func TestModelLoadRejectsWithLineAndKeepsOldModel(t *testing.T) {
	b, alice, _ := withBob(t)
	before := b.SSH(alice, "model", "show")
	mustOK(t, before, "model show")
	if !strings.Contains(before.Stdout, "type resource") {
		t.Fatalf("model show: %q", before.Stdout)
	}
	for name, src := range map[string]string{"condition": conditionModel, "syntax": syntaxErrorModel} {
		r := b.SSHRun(harness.Run{Key: &alice, Args: []string{"model", "load"}, Stdin: src})
		if r.Code == 0 {
			t.Fatalf("%s model loaded", name)
		}
		if !strings.Contains(r.Stderr, "model.fga:8") && !strings.Contains(r.Stderr, "model.fga:7") {
			t.Errorf("%s model: error does not name the line: %q", name, r.Stderr)
		}
	}
	after := b.SSH(alice, "model", "show")
	if after.Stdout != before.Stdout {
		t.Fatal("a rejected model replaced the old one")
	}
	var denied int
	for _, e := range auditEvents(t, b, alice, "--action", "model.load") {
		if e.Decision == "deny" && strings.Contains(e.Reason, "model.fga:") {
			denied++
		}
	}
	if denied != 2 {
		t.Fatalf("want 2 audited model.load refusals, got %d", denied)
	}
	// A valid model loads and is then in force.
	valid := strings.Replace(before.Stdout, "type user\n", "type user\n\ntype team\n  relations\n    define member: [user]\n", 1)
	mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"model", "load"}, Stdin: valid}), "model load valid")
	if r := b.SSH(alice, "model", "show"); !strings.Contains(r.Stdout, "type team") {
		t.Fatal("loaded model not in force")
	}
}

func TestNonAdminCannotChangePolicy(t *testing.T) {
	b, _, bob := withBob(t)
	cases := [][]string{
		{"tuples", "add", "resource:web-1#act@user:bob"},
		{"resources", "add", "db", "--kind", "tcp", "--address", "127.0.0.1:5432"},
		{"model", "load"},
	}
	for _, args := range cases {
		r := b.SSHRun(harness.Run{Key: &bob, Args: args, Stdin: conditionModel})
		if r.Code == 0 {
			t.Errorf("bob ran %v", args)
			continue
		}
		if !strings.Contains(r.Stderr, "permission denied") || !strings.Contains(r.Stderr, "relation admin on") {
			t.Errorf("%v: refusal does not name the relation lacking: %q", args, r.Stderr)
		}
	}
}
