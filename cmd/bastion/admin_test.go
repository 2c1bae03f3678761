package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

const lockoutModel = "model\n  schema 1.1\ntype user\n"

func TestStartModelRecordsVersionOneAndFallsBackFromALockout(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	m, err := startModel(ctx, st, log)
	if err != nil || m.Source() != policy.DefaultModel {
		t.Fatalf("first start: %v", err)
	}
	v1, ok, err := st.LatestModel(ctx)
	if err != nil || !ok || v1.Version != 1 || v1.Action != "initial" || v1.Source != policy.DefaultModel {
		t.Fatalf("version 1: %+v %v %v", v1, ok, err)
	}

	// A lockout model got stored (by an older bastion, say): the start
	// keeps admins in on the default model, and says why.
	if _, err := st.AppendModel(ctx, store.NewModelVersion(lockoutModel, "mallory", "load", 0, v1.Time)); err != nil {
		t.Fatal(err)
	}
	m, err = startModel(ctx, st, log)
	if err != nil || m.Source() != policy.DefaultModel {
		t.Fatalf("start on a lockout model: %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "domain#admin") {
		t.Fatalf("no error logged naming what is missing:\n%s", logs.String())
	}
	if vs, _ := st.ModelVersions(ctx); len(vs) != 2 {
		t.Fatalf("the start rewrote the history: %d versions", len(vs))
	}
}

func TestStartModelImportsTheModelOfAnOlderBastion(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := strings.Replace(policy.DefaultModel, "type user\n", "type user\n\ntype team\n  relations\n    define member: [user]\n", 1)
	if err := st.PutSecret(ctx, modelSecret, []byte(old)); err != nil {
		t.Fatal(err)
	}
	m, err := startModel(ctx, st, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil || !m.HasRelation("team", "member") {
		t.Fatalf("the older bastion's model is not in force: %v", err)
	}
	if v, ok, _ := st.LatestModel(ctx); !ok || v.Version != 1 || v.Source != old {
		t.Fatalf("not imported as version 1: %+v", v)
	}
}

// runAdmin runs `bastion admin ARGS...` as main does.
func runAdmin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newAdminCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestBreakGlass(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := runAdmin(t, "--data", dir, "restore-model"); err == nil || !strings.Contains(err.Error(), "no bastion store") {
		t.Fatalf("an empty directory: %v", err)
	}
	st, err := badger.Open(dir, badger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendModel(ctx, store.NewModelVersion(lockoutModel, "mallory", "load", 0, time.Now())); err != nil {
		t.Fatal(err)
	}
	// While the server holds the store, nothing is touched.
	if _, err := runAdmin(t, "--data", dir, "grant-admin", "bob"); err == nil || !strings.Contains(err.Error(), "stop the server first") {
		t.Fatalf("store in use: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := runAdmin(t, "--data", dir, "restore-model")
	if err != nil || !strings.Contains(out, "restored the default model as model version 2") {
		t.Fatalf("restore-model: %q %v", out, err)
	}
	out, err = runAdmin(t, "--data", dir, "--domain", "corp", "grant-admin", "bob")
	if err != nil || !strings.Contains(out, "granted domain:corp#admin@user:bob") {
		t.Fatalf("grant-admin: %q %v", out, err)
	}
	if _, err := runAdmin(t, "--data", dir, "grant-admin", "bad name"); err == nil {
		t.Fatal("an invalid user name was granted")
	}

	st, err = badger.Open(dir, badger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, _, _ := st.LatestModel(ctx); v.Version != 2 || v.Action != "break-glass" || v.Source != policy.DefaultModel {
		t.Fatalf("restored version: %+v", v)
	}
	if ts, _ := st.TuplesByObject(ctx, "domain:corp", "admin"); len(ts) != 1 || ts[0].Subject != "user:bob" {
		t.Fatalf("admin tuples: %v", ts)
	}
	if _, err := st.GetUser(ctx, "bob"); err != nil {
		t.Fatalf("bob was not created: %v", err)
	}
	evs, err := st.QueryEvents(ctx, store.EventFilter{Action: "admin.break_glass"})
	if err != nil || len(evs) != 2 || evs[0].Details["what"] != "restore-model" || evs[1].Details["what"] != "grant-admin" ||
		evs[1].Target != "bob" {
		t.Fatalf("break-glass events: %v %+v", err, evs)
	}
	if rep, err := audit.Verify(ctx, st); err != nil || !rep.OK {
		t.Fatalf("audit verify after break-glass: %+v %v", rep, err)
	}
}
