package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// Every command that shows something takes -o json and prints one JSON
// document: a list is [] when empty (never null), and a time that is not
// set is left out, not written as year 1.
func TestEveryCommandPrintsJSON(t *testing.T) {
	b, alice := admin(t, "")
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "resources", "add", "web-1", "--kind", "tcp", "--address", "192.0.2.10:80", "--project", "shop"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "project:shop#viewer@user:bob"), "tuples add")
	mustOK(t, b.SSH(bob, "request", "create", "web-1", "--reason", "json test"), "request create")

	for _, c := range []struct {
		who  harness.Key
		args []string
	}{
		{alice, []string{"whoami"}},
		{alice, []string{"resources", "list"}},
		{alice, []string{"resources", "show", "web-1"}},
		{alice, []string{"users", "list"}},
		{alice, []string{"keys", "list"}},
		{alice, []string{"groups", "list"}},
		{alice, []string{"tuples", "list"}},
		{alice, []string{"sessions"}},
		{alice, []string{"sessions", "--all"}},
		{alice, []string{"recordings", "list"}},
		{alice, []string{"request", "list"}},
		{bob, []string{"request", "search"}},
		{alice, []string{"audit", "--limit", "5"}},
		{alice, []string{"audit", "verify"}},
		{alice, []string{"model", "show"}},
		{alice, []string{"model", "history"}},
		{alice, []string{"certs", "revoked"}},
		{alice, []string{"config"}},
		{bob, []string{"whoami"}},
		{bob, []string{"resources", "list"}},
		{bob, []string{"sessions"}},
		{bob, []string{"recordings", "list"}},
	} {
		args := append(append([]string{}, c.args...), "-o", "json")
		r := b.SSH(c.who, args...)
		what := strings.Join(args, " ")
		mustOK(t, r, what)
		var v any
		if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
			t.Errorf("%s: not one JSON document: %v\n%s", what, err, r.Stdout)
			continue
		}
		if v == nil {
			t.Errorf("%s: prints null; an empty list is []", what)
		}
		if strings.Contains(r.Stdout, "0001-01-01") {
			t.Errorf("%s: a time that is not set is written as year 1:\n%s", what, r.Stdout)
		}
	}
	// whoami says whether the caller is an admin, and lists groups.
	var w map[string]any
	if err := json.Unmarshal([]byte(b.SSH(alice, "whoami", "-o", "json").Stdout), &w); err != nil || w["admin"] != true {
		t.Fatalf("whoami -o json of the admin: %v, %v", w, err)
	}
	if _, ok := w["groups"].([]any); !ok {
		t.Fatalf("whoami -o json has no groups list: %v", w)
	}
}
