package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
	"github.com/sshbastion/bastion/store/storetest"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

// etcdProc is one etcd member on loopback (see package etcdtest).
type etcdProc = etcdtest.Proc

func freePort(t testing.TB) string { return etcdtest.FreePort(t) }

// startEtcd starts an etcd member and waits until it is healthy. It is
// killed when the test ends.
func startEtcd(t testing.TB) *etcdProc { return etcdtest.Start(t) }

var prefixes atomic.Int64

// open opens a store on a prefix of its own, closed when the test ends.
func open(t testing.TB, p *etcdProc, prefix string, mod func(*etcd.Options)) *etcd.Store {
	t.Helper()
	if prefix == "" {
		prefix = fmt.Sprintf("/test/%d/", prefixes.Add(1))
	}
	opts := etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: prefix, Logger: quiet}
	if mod != nil {
		mod(&opts)
	}
	s, err := etcd.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	_ store.Store                                     = (*etcd.Store)(nil)
	_ interface{ TxnLimits() (maxBytes, maxOps int) } = (*etcd.Store)(nil)
)

// TestSuite runs the behaviour suite that every backend passes against a
// real etcd, each case on a fresh prefix of one member.
func TestSuite(t *testing.T) {
	p := startEtcd(t)
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		return open(t, p, "", func(o *etcd.Options) { o.Clock = clock })
	})
}

func TestOpenFailsWithoutEtcd(t *testing.T) {
	start := time.Now()
	_, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{"http://127.0.0.1:" + freePort(t)},
		DialTimeout: 500 * time.Millisecond, Logger: quiet})
	if err == nil {
		t.Fatal("Open with no etcd listening succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open took %s to fail, with a 500ms dial timeout", d)
	}
}

func TestTxnLimitsFitEtcd(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "", nil)
	maxBytes, maxOps := s.TxnLimits()
	if maxOps+1 > 128 || maxBytes > 1<<20 {
		t.Fatalf("TxnLimits() = %d bytes, %d ops: beyond etcd's defaults", maxBytes, maxOps)
	}
	// A call at both limits at once is one transaction etcd accepts.
	blob := strings.Repeat("y", maxBytes/maxOps-200)
	evs := make([]store.Event, maxOps)
	for i := range evs {
		evs[i] = store.Event{Seq: uint64(i + 1), Actor: "user:a", Action: "x", Hash: "h", Details: map[string]string{"d": blob}}
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatalf("AppendEvents at TxnLimits: %v", err)
	}
	big := store.Event{Seq: uint64(maxOps + 1), Details: map[string]string{"d": strings.Repeat("z", maxBytes)}}
	if err := s.AppendEvents(ctx, []store.Event{big}); !errors.Is(err, store.ErrTxnTooBig) {
		t.Fatalf("AppendEvents of an event above TxnLimits: %v, want ErrTxnTooBig", err)
	}
}

// TestReopenAfterKillKeepsEverything: what was acknowledged survives
// kill -9 of etcd, and a store opened afterwards continues the audit seq.
func TestReopenAfterKillKeepsEverything(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "/durable/", nil)
	tu := store.Tuple{Object: "resource:web", Relation: "act", Subject: "user:alice", Expires: storetest.Epoch.Add(time.Hour)}
	evs := []store.Event{{Seq: 1, Actor: "a", Hash: "h1"}, {Seq: 2, Actor: "a", PrevHash: "h1", Hash: "h2"}}
	for _, err := range []error{
		s.PutUser(ctx, store.User{Name: "alice"}),
		s.PutKey(ctx, store.Key{Fingerprint: "SHA256:a", User: "alice"}),
		s.PutSecret(ctx, "host-key", []byte("secret")),
		s.WriteTuples(ctx, []store.Tuple{tu}, nil),
		s.AppendEvents(ctx, evs),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	p.Kill(t)
	p.Start(t)
	clock := storetest.NewClock(storetest.Epoch)
	s = open(t, p, "/durable/", func(o *etcd.Options) { o.Clock = clock.Now })
	last, ok, err := s.LastEvent(ctx)
	if err != nil || !ok || last.Seq != 2 || last.Hash != "h2" {
		t.Fatalf("LastEvent after restart: %+v, %v, %v", last, ok, err)
	}
	if err := s.AppendEvents(ctx, []store.Event{{Seq: 1}}); err == nil {
		t.Fatal("seq 1 appended again after restart")
	}
	if err := s.AppendEvents(ctx, []store.Event{{Seq: 3, PrevHash: "h2", Hash: "h3"}}); err != nil {
		t.Fatal(err)
	}
	if ks, err := s.KeysOf(ctx, "alice"); err != nil || len(ks) != 1 {
		t.Fatalf("KeysOf after restart: %v, %v", ks, err)
	}
	if v, err := s.GetSecret(ctx, "host-key"); err != nil || string(v) != "secret" {
		t.Fatalf("secret after restart: %q, %v", v, err)
	}
	if ts, err := s.TuplesBySubject(ctx, "user:alice", "resource"); err != nil || len(ts) != 1 || !ts[0].Expires.Equal(tu.Expires) {
		t.Fatalf("tuples after restart: %+v, %v", ts, err)
	}
	clock.Advance(time.Hour)
	if ts, err := s.TuplesBySubject(ctx, "user:alice", "resource"); err != nil || len(ts) != 0 {
		t.Fatalf("expired tuple visible after restart: %+v, %v", ts, err)
	}
	if err := s.TamperEventForTest(2, func(e *store.Event) { e.Actor = "mallory" }); err != nil {
		t.Fatal(err)
	}
	var got []store.Event
	if err := s.ScanEvents(ctx, 0, func(e store.Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Actor != "mallory" || got[1].Hash != "h2" {
		t.Fatalf("after tampering: %+v", got)
	}
}

func TestPurgeExpiredTuples(t *testing.T) {
	p := startEtcd(t)
	clock := storetest.NewClock(storetest.Epoch)
	s := open(t, p, "", func(o *etcd.Options) { o.Clock = clock.Now })
	var add []store.Tuple
	for i := 0; i < 10; i++ {
		tu := store.Tuple{Object: fmt.Sprintf("resource:r%d", i), Relation: "act", Subject: "user:a"}
		if i < 4 {
			tu.Expires = storetest.Epoch.Add(time.Minute)
		}
		add = append(add, tu)
	}
	if err := s.WriteTuples(ctx, add, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeExpiredTuples(ctx); err != nil || n != 0 {
		t.Fatalf("purged %d live tuples, %v", n, err)
	}
	clock.Advance(time.Minute)
	if n, err := s.PurgeExpiredTuples(ctx); err != nil || n != 4 {
		t.Fatalf("purged %d, %v; want 4", n, err)
	}
	clock.Set(storetest.Epoch)
	if ts, err := s.TuplesBySubject(ctx, "user:a", ""); err != nil || len(ts) != 6 {
		t.Fatalf("%d tuples by subject after purge, %v; want 6", len(ts), err)
	}
}
