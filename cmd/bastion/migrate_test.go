package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// migrateFixture is what fillStore wrote, to be found again on a target.
type migrateFixture struct {
	secrets    map[string][]byte
	tokens     []string
	recordings map[string][]byte
}

// fillStore writes every kind of record into a new badger store in dir,
// and an audit log of 200 events through audit.Log whose first 100 are
// archived (a checkpoint at seq 100, events 101-200 stored).
func fillStore(t *testing.T, dir string) migrateFixture {
	t.Helper()
	ctx := context.Background()
	st, err := badger.Open(dir, badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	fx := migrateFixture{secrets: map[string][]byte{
		hostKeySecret: []byte("host key pem"), "user-ca-ed25519": []byte("ca pem"),
		modelSecret: []byte(policy.DefaultModel), "target-host-key/web-1": []byte("ssh-ed25519 AAAA pinned\n"),
		"large": bytes.Repeat([]byte("0123456789abcdef"), 45<<10), // 720 KiB: a blob on etcd
	}, recordings: map[string][]byte{}}
	for n, v := range fx.secrets {
		must(st.PutSecret(ctx, n, v))
	}
	for _, u := range []string{"alice", "bob"} {
		must(st.PutUser(ctx, store.User{Name: u, Groups: []string{"ops"}, Source: "local", Created: now}))
		must(st.PutKey(ctx, store.Key{Fingerprint: "SHA256:" + u, User: u, Type: "ssh-ed25519",
			AuthorizedKey: "ssh-ed25519 AAAA" + u, Added: now, Expires: now.Add(24 * time.Hour)}))
	}
	must(st.PutResource(ctx, store.Resource{Name: "web-1", Kind: "ssh", Address: "10.0.0.1:22", Ports: []int{22},
		Project: "payments", Labels: map[string]string{"env": "prod"}, Origin: store.OriginConfig}))
	must(st.PutResource(ctx, store.Resource{Name: "prod", Kind: "kube", Address: "https://10.0.0.2:6443",
		Kube: &store.KubeSpec{Credentials: "prod", Groups: map[string][]string{"act": {"devs"}}}, Origin: store.OriginSSH}))
	var tuples []store.Tuple
	for i := 0; i < 120; i++ { // more than one etcd transaction of tuples
		tu := store.Tuple{Object: fmt.Sprintf("resource:r%d", i), Relation: "act", Subject: "user:alice"}
		if i%3 == 0 {
			tu.Expires = now.Add(time.Hour)
		}
		tuples = append(tuples, tu)
	}
	must(st.WriteTuples(ctx, tuples, nil))
	must(st.PutSession(ctx, store.Session{ID: "s1", User: "alice", Resource: "web-1", Kind: "shell", Opened: now,
		Expires: now.Add(time.Hour), State: "closed", Closed: now.Add(time.Minute), Recording: "rec-s1", Replica: "a"}))
	must(st.PutSession(ctx, store.Session{ID: "s2", User: "bob", Resource: "prod", Kind: "kube", Opened: now,
		Expires: now.Add(time.Hour), State: "open", Replica: "a"}))
	for i, src := range []string{policy.DefaultModel, policy.DefaultModel + "\n", policy.DefaultModel} {
		_, err := st.AppendModel(ctx, store.NewModelVersion(src, "alice", "load", uint64(i), now))
		must(err)
	}
	must(st.RevokeCert(ctx, store.CertRevocation{Serial: 7, Reason: "lost laptop", By: "alice", At: now}))
	must(st.RevokeCert(ctx, store.CertRevocation{Serial: 42, By: "bob", At: now}))
	must(st.PutAccessRequest(ctx, store.AccessRequest{ID: "r1", User: "bob", Resources: []string{"web-1"},
		Reason: "incident", TTL: time.Hour, State: "approved", Created: now, Reviewer: "alice", Expires: now.Add(time.Hour)}))
	must(st.PutAccessRequest(ctx, store.AccessRequest{ID: "r2", User: "bob", Resources: []string{"prod"}, State: "pending", Created: now}))
	for _, tok := range []string{"token-1", "token-2"} {
		h := store.TokenHash(tok)
		fx.tokens = append(fx.tokens, h)
		must(st.PutKubeToken(ctx, store.KubeToken{Hash: h, User: "bob", Resource: "prod", Session: "s2", Created: now, Expires: now.Add(time.Hour)}))
	}
	for id, chunks := range map[string][][]byte{
		"rec-s1": {[]byte("{\"version\":2}\n"), bytes.Repeat([]byte("x"), 600<<10), []byte("[1.0,\"o\",\"bye\"]\n")},
		"rec-s3": {[]byte("{\"version\":2}\n")},
	} {
		for _, c := range chunks {
			must(st.AppendRecording(ctx, id, c))
			fx.recordings[id] = append(fx.recordings[id], c...)
		}
	}

	alog, err := audit.New(st, audit.Options{Logger: quiet})
	must(err)
	base := now.Add(-time.Hour)
	for i := 0; i < 200; i++ {
		_, err := alog.Append(ctx, store.Event{Time: base.Add(time.Duration(i) * time.Second), Actor: "alice",
			Action: "forward.open", Target: "web-1", Decision: "allow", Details: map[string]string{"n": fmt.Sprint(i)}})
		must(err)
		if i == 149 {
			var seg bytes.Buffer
			rep, err := audit.Archive(ctx, st, base.Add(100*time.Second), &seg, now)
			must(err)
			if rep.Checkpoint.Seq != 100 {
				t.Fatalf("archived to seq %d, want 100", rep.Checkpoint.Seq)
			}
		}
	}
	must(alog.Close())
	return fx
}

// sameJSON fails unless a and b encode alike.
func sameJSON(t *testing.T, what string, a, b any) {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("%s differ:\nsource %s\ntarget %s", what, ja, jb)
	}
}

// assertCopy checks that every record of the badger store in dir is in
// dst, and that dst's audit chain verifies to the same head.
func assertCopy(t *testing.T, dir string, fx migrateFixture, dst store.Store) {
	t.Helper()
	ctx := context.Background()
	src, err := badger.Open(dir, badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, c := range []struct {
		what string
		get  func(store.Store) (any, error)
	}{
		{"users", func(s store.Store) (any, error) { return s.ListUsers(ctx) }},
		{"keys", func(s store.Store) (any, error) { return s.ListKeys(ctx) }},
		{"keys of alice", func(s store.Store) (any, error) { return s.KeysOf(ctx, "alice") }},
		{"resources", func(s store.Store) (any, error) { return s.ListResources(ctx) }},
		{"tuples of alice", func(s store.Store) (any, error) { return s.TuplesBySubject(ctx, "user:alice", "resource") }},
		{"sessions", func(s store.Store) (any, error) { return s.ListSessions(ctx) }},
		{"model versions", func(s store.Store) (any, error) { return s.ModelVersions(ctx) }},
		{"revocations", func(s store.Store) (any, error) { return s.ListCertRevocations(ctx) }},
		{"requests", func(s store.Store) (any, error) { return s.ListAccessRequests(ctx) }},
		{"checkpoint", func(s store.Store) (any, error) { c, _, err := s.Checkpoint(ctx); return c, err }},
	} {
		a, err := c.get(src)
		if err != nil {
			t.Fatalf("source %s: %v", c.what, err)
		}
		b, err := c.get(dst)
		if err != nil {
			t.Fatalf("target %s: %v", c.what, err)
		}
		sameJSON(t, c.what, a, b)
	}
	if ts, _ := dst.ListTuples(ctx); len(ts) != 120 {
		t.Errorf("target holds %d tuples, want 120", len(ts))
	}
	for n, v := range fx.secrets {
		if got, err := dst.GetSecret(ctx, n); err != nil || !bytes.Equal(got, v) {
			t.Errorf("secret %s: %d bytes, %v", n, len(got), err)
		}
	}
	for _, h := range fx.tokens {
		a, _ := src.KubeToken(ctx, h)
		b, err := dst.KubeToken(ctx, h)
		if err != nil {
			t.Errorf("kube token: %v", err)
		}
		sameJSON(t, "kube token", a, b)
	}
	for id, want := range fx.recordings {
		var got []byte
		if err := dst.ReadRecording(ctx, id, func(c []byte) error { got = append(got, c...); return nil }); err != nil || !bytes.Equal(got, want) {
			t.Errorf("recording %s: %d bytes of %d, %v", id, len(got), len(want), err)
		}
	}
	var a, b []store.Event
	_ = src.ScanEvents(ctx, 0, func(e store.Event) error { a = append(a, e); return nil })
	_ = dst.ScanEvents(ctx, 0, func(e store.Event) error { b = append(b, e); return nil })
	if len(b) != 100 || b[0].Seq != 101 {
		t.Fatalf("target holds %d events from seq %d, want 100 from 101", len(b), b[0].Seq)
	}
	sameJSON(t, "audit events", a, b)
	rep, err := audit.Verify(ctx, dst)
	if err != nil || !rep.OK || rep.LastSeq != 200 || rep.From != 100 {
		t.Fatalf("audit verify on the target: %+v %v", rep, err)
	}
	sh, _, _ := src.LastEvent(ctx)
	dh, _, _ := dst.LastEvent(ctx)
	if sh.Hash != dh.Hash || dh.Seq != 200 {
		t.Fatalf("head: source %d %s, target %d %s", sh.Seq, sh.Hash, dh.Seq, dh.Hash)
	}
}

func TestMigrateBadgerToEtcdAndBack(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	fx := fillStore(t, dir)
	p := etcdtest.Start(t)
	to := "etcd://" + strings.TrimPrefix(p.ClientURL, "http://")

	var out bytes.Buffer
	if err := runMigrate(ctx, migrateFlags{from: "badger:" + dir, to: to, prefix: "/bastion/"}, &out, quiet); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	for _, want := range []string{"audit verify", "ok, 100 events to seq 200", "kube tokens", "migrated"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "DIFFERS") {
		t.Errorf("summary shows a difference:\n%s", out.String())
	}
	es, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/bastion/", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	assertCopy(t, dir, fx, es)
	es.Close()

	// The target is no longer empty: a second migrate writes nothing.
	out.Reset()
	err = runMigrate(ctx, migrateFlags{from: "badger:" + dir, to: to, prefix: "/bastion/"}, &out, quiet)
	if err == nil || !strings.Contains(err.Error(), "is not empty") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("second migrate: %v", err)
	}

	// And back, from etcd into a new badger directory.
	back := filepath.Join(t.TempDir(), "back")
	out.Reset()
	if err := runMigrate(ctx, migrateFlags{from: to, to: "badger:" + back, prefix: "/bastion/"}, &out, quiet); err != nil {
		t.Fatalf("migrate back: %v\n%s", err, out.String())
	}
	bs, err := badger.Open(back, badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	assertCopy(t, dir, fx, bs)
}

func TestMigrateRefusesARunningServerAndBadNames(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	st, err := badger.Open(dir, badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(ctx, store.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	// st stays open, as a running server's would.
	err = runMigrate(ctx, migrateFlags{from: "badger:" + dir, to: "badger:" + t.TempDir(), prefix: "/bastion/"}, io.Discard, quiet)
	if err == nil || !strings.Contains(err.Error(), "stop the server first") {
		t.Fatalf("migrate from a store in use: %v", err)
	}
	st.Close()
	for _, f := range []migrateFlags{
		{from: "postgres://x", to: "badger:" + t.TempDir()},
		{from: "badger:", to: "badger:" + t.TempDir()},
		{from: "badger:" + t.TempDir(), to: "badger:/elsewhere"}, // no store there
		{from: "badger:" + dir, to: "badger:" + dir},
	} {
		if err := runMigrate(ctx, f, io.Discard, quiet); err == nil {
			t.Errorf("migrate %+v: no error", f)
		}
	}
	// badger to badger works too, and says what it copied.
	var out bytes.Buffer
	if err := runMigrate(ctx, migrateFlags{from: "badger:" + dir, to: "badger:" + filepath.Join(t.TempDir(), "b")}, &out, quiet); err != nil {
		t.Fatalf("badger to badger: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "users") || !strings.Contains(out.String(), "audit head") {
		t.Fatalf("summary:\n%s", out.String())
	}
}

func TestMigrateCompareFindsDifferences(t *testing.T) {
	ctx := context.Background()
	dir, to := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	fillStore(t, dir)
	if err := runMigrate(ctx, migrateFlags{from: "badger:" + dir, to: "badger:" + to}, io.Discard, quiet); err != nil {
		t.Fatal(err)
	}
	// Damage the copy: one user gone, one event altered, one secret changed.
	st, err := badger.Open(to, badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.DeleteUser(ctx, "bob")
	_ = st.PutSecret(ctx, hostKeySecret, []byte("another key"))
	if err := st.TamperEventForTest(150, func(e *store.Event) { e.Actor = "mallory" }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	src, err := openMigrateSide(ctx, "badger:"+dir, "/bastion/", defaultConfig(), true, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	dst, err := openMigrateSide(ctx, "badger:"+to, "/bastion/", defaultConfig(), false, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.close()
	have, err := readInventory(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := compareStores(ctx, src, dst, have)
	if err != nil {
		t.Fatal(err)
	}
	differs := map[string]bool{}
	for _, r := range rows {
		differs[r.kind] = !r.same
	}
	for _, k := range []string{"users", "keys", "secrets", "audit events", "audit verify"} {
		if !differs[k] {
			t.Errorf("%s: no difference found", k)
		}
	}
	for _, k := range []string{"tuples", "recordings", "audit checkpoint", "model versions"} {
		if differs[k] {
			t.Errorf("%s: a difference found where there is none", k)
		}
	}
}

// A server killed with -9 leaves a log that badger replays at the next
// open (a read-only open refuses it): migrate copies such a store too.
func TestMigrateAfterACrash(t *testing.T) {
	ctx := context.Background()
	if dir := os.Getenv("BASTION_TEST_CRASH_DIR"); dir != "" {
		st, err := badger.Open(dir, badger.Options{Logger: quiet})
		if err != nil {
			os.Exit(2)
		}
		// A failed write exits 3, which fails the parent test.
		if st.PutSecret(ctx, hostKeySecret, []byte("key")) != nil ||
			st.PutKubeToken(ctx, store.KubeToken{Hash: "h1", User: "bob"}) != nil ||
			st.AppendRecording(ctx, "rec-1", []byte("chunk")) != nil {
			os.Exit(3)
		}
		os.Exit(0) // no Close, as kill -9
	}
	dir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^TestMigrateAfterACrash$")
	cmd.Env = append(os.Environ(), "BASTION_TEST_CRASH_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crashing writer: %v\n%s", err, out)
	}
	var out bytes.Buffer
	if err := runMigrate(ctx, migrateFlags{from: "badger:" + dir, to: "badger:" + filepath.Join(t.TempDir(), "b")}, &out, quiet); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	for _, want := range []string{`secrets +1 +1 +ok`, `kube tokens +1 +1 +ok`, `recordings +1 +1 +ok`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
