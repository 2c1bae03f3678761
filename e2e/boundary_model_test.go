package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// The tests of this file try to lock every admin out through the model,
// and use the ways back: history, rollback, and the break-glass commands
// of whoever runs the server.

// lockoutModel parses, and has none of what the bastion relies on.
const lockoutModel = "model\n  schema 1.1\ntype user\n"

func modelHistory(t *testing.T, b *harness.Bastion, k harness.Key) []store.ModelVersion {
	t.Helper()
	r := b.SSH(k, "model", "history", "-o", "json")
	mustOK(t, r, "model history")
	var vs []store.ModelVersion
	if err := json.Unmarshal([]byte(r.Stdout), &vs); err != nil {
		t.Fatalf("model history -o json: %v\n%s", err, r.Stdout)
	}
	return vs
}

// bastionAdmin runs `bastion admin --data DIR ARGS...` as the operator of
// the machine would.
func bastionAdmin(t *testing.T, b *harness.Bastion, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), append([]string{"admin", "--data", b.DataDir}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestBoundaryModelLockoutRefused: a model without domain#admin,
// resource#act and the rest is refused, naming what is missing, and the
// admin keeps working.
func TestBoundaryModelLockoutRefused(t *testing.T) {
	b, alice := admin(t, "")
	before := b.SSH(alice, "model", "show")
	mustOK(t, before, "model show")
	r := b.SSHRun(harness.Run{Key: &alice, Args: []string{"model", "load"}, Stdin: lockoutModel})
	if r.Code == 0 {
		t.Fatalf("the lockout model loaded:\n%s", r.Stdout)
	}
	if !harness.Contains(r.Stderr, "previous model stays in force", "type domain is missing", "domain#admin",
		"type project is missing", "project#admin", "project#reviewer", "type resource is missing", "resource#act",
		"resource#view", "resource#project", "type group is missing", "group#member") {
		t.Fatalf("the refusal does not name what is missing:\n%s", r.Stderr)
	}
	// Still admin: admin commands work, the model did not change.
	mustOK(t, b.SSH(alice, "users", "list"), "users list after the refusal")
	if after := b.SSH(alice, "model", "show"); after.Stdout != before.Stdout {
		t.Fatal("the refused model replaced the old one")
	}
	var denied bool
	for _, e := range auditEvents(t, b, alice, "--action", "model.load") {
		denied = denied || (e.Decision == "deny" && strings.Contains(e.Reason, "domain#admin"))
	}
	if !denied {
		t.Fatal("the refusal is not audited")
	}
	if vs := modelHistory(t, b, alice); len(vs) != 1 || vs[0].Action != "initial" {
		t.Fatalf("the refusal changed the history: %+v", vs)
	}
}

// TestBoundaryModelHistoryAndRollback: loads and rollbacks are versions,
// listed with who, when, hash and size, audited, and kept across restarts.
func TestBoundaryModelHistoryAndRollback(t *testing.T) {
	b, alice := admin(t, "")
	orig := b.SSH(alice, "model", "show")
	mustOK(t, orig, "model show")
	changed := strings.Replace(orig.Stdout, "type user\n", "type user\n\ntype team\n  relations\n    define member: [user]\n", 1)
	r := b.SSHRun(harness.Run{Key: &alice, Args: []string{"model", "load"}, Stdin: changed})
	mustOK(t, r, "model load")
	if !strings.Contains(r.Stdout, "version 2") {
		t.Fatalf("model load does not name the version: %s", r.Stdout)
	}

	b.Restart()
	if s := b.SSH(alice, "model", "show"); !strings.Contains(s.Stdout, "type team") {
		t.Fatal("the loaded model did not survive the restart")
	}
	vs := modelHistory(t, b, alice)
	if len(vs) < 2 || vs[0].Version != 1 || vs[0].Action != "initial" || vs[1].Version != 2 || vs[1].Actor != "alice" ||
		vs[1].Action != "load" || vs[1].Size != len(changed) || len(vs[1].SHA256) != 64 || vs[1].Time.IsZero() {
		t.Fatalf("history: %+v", vs)
	}
	table := b.SSH(alice, "model", "history")
	mustOK(t, table, "model history")
	if !harness.Contains(table.Stdout, "VERSION", "ACTOR", "SHA256", "initial", "alice", vs[1].SHA256[:12]) {
		t.Fatalf("history table:\n%s", table.Stdout)
	}

	r = b.SSH(alice, "model", "rollback", "1")
	mustOK(t, r, "model rollback 1")
	if s := b.SSH(alice, "model", "show"); s.Stdout != orig.Stdout {
		t.Fatalf("rollback 1 did not restore version 1:\n%s", s.Stdout)
	}
	vs = modelHistory(t, b, alice)
	if last := vs[len(vs)-1]; last.Action != "rollback" || last.From != 1 || last.SHA256 != vs[0].SHA256 || last.Actor != "alice" {
		t.Fatalf("the rollback is not recorded as a version: %+v", last)
	}
	if r := b.SSH(alice, "model", "rollback", "99"); r.Code == 0 || !strings.Contains(r.Stderr, "no model version 99") {
		t.Fatalf("rollback to a missing version: exit %d %s", r.Code, r.Stderr)
	}
	seen := map[string]bool{}
	for _, e := range auditEvents(t, b, alice, "--action", "model.") {
		if e.Decision == "allow" && e.Actor == "alice" {
			seen[e.Action+" "+e.Details["version"]] = true
		}
	}
	if !seen["model.load 2"] || !seen["model.rollback 3"] {
		t.Fatalf("load and rollback are not both audited: %v", seen)
	}
	b.Restart()
	if s := b.SSH(alice, "model", "show"); s.Stdout != orig.Stdout {
		t.Fatal("the rollback did not survive the restart")
	}
}

// TestBoundaryModelBreakGlass: a lockout model stored behind the server's
// back does not lock admins out at start; with the server stopped, the
// operator restores the default model and makes bob admin, audited in the
// same chain.
func TestBoundaryModelBreakGlass(t *testing.T) {
	b, alice := admin(t, "")
	bob := addUser(t, b, alice, "bob")
	if r := b.SSH(bob, "users", "list"); r.Code == 0 {
		t.Fatal("bob is admin from the start")
	}

	// A lockout model in the store, as an older bastion could have kept.
	b.Stop()
	st, err := badger.Open(b.DataDir, badger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendModel(context.Background(), store.NewModelVersion(lockoutModel, "mallory", "load", 0, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	if !harness.Contains(b.Logs(), "level=ERROR", "running on the default model", "domain#admin") {
		t.Fatalf("the start does not say it fell back from the stored model:\n%s", b.Logs())
	}
	mustOK(t, b.SSH(alice, "users", "list"), "alice is still admin on the fallback model")

	// With the server running, break-glass touches nothing.
	if out, code := bastionAdmin(t, b, "grant-admin", "bob"); code == 0 || !strings.Contains(out, "stop the server first") {
		t.Fatalf("break-glass with the server running: exit %d\n%s", code, out)
	}

	b.Stop()
	out, code := bastionAdmin(t, b, "restore-model")
	if code != 0 || !strings.Contains(out, "restored the default model") {
		t.Fatalf("restore-model: exit %d\n%s", code, out)
	}
	out, code = bastionAdmin(t, b, "grant-admin", "bob")
	if code != 0 || !strings.Contains(out, "granted domain:default#admin@user:bob") {
		t.Fatalf("grant-admin: exit %d\n%s", code, out)
	}
	b.Restart()
	if strings.Contains(b.Logs(), "running on the default model") {
		t.Fatalf("the restored model still fails the start check:\n%s", b.Logs())
	}

	mustOK(t, b.SSH(bob, "users", "list"), "bob is admin after break-glass")
	what := map[string]bool{}
	for _, e := range auditEvents(t, b, bob, "--action", "admin.break_glass") {
		if e.Decision == "allow" && strings.Contains(e.Reason, "break-glass") {
			what[e.Details["what"]] = true
		}
	}
	if !what["restore-model"] || !what["grant-admin"] {
		t.Fatalf("the break-glass repairs are not audited: %v", what)
	}
	r := b.SSH(bob, "audit", "verify")
	mustOK(t, r, "audit verify")
	if !strings.HasPrefix(r.Stdout, "OK") {
		t.Fatalf("audit verify: %s", r.Stdout)
	}
	vs := modelHistory(t, b, bob)
	if last := vs[len(vs)-1]; last.Action != "break-glass" || last.Actor != "bastion" {
		t.Fatalf("the restore is not in the history: %+v", last)
	}
}
