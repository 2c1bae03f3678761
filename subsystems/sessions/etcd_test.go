package sessions

import (
	"context"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// Three replicas on one real etcd, each with its own client and lease: a
// kill on B and a tuple removal on C cut sessions held on A within a
// second; when A dies (its client gone, its lease left to expire), a
// survivor ends A's open sessions as replica lost and audits it, once.
func TestEtcdReplicasKillPolicyAndLoss(t *testing.T) {
	p := etcdtest.Start(t)
	ctx := context.Background()
	open := func() *etcd.Store {
		s, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/sessions/", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sa, sb, sc := open(), open(), open()
	reps := func(s *etcd.Store) Replicas { return etcd.NewReplicas(s, etcd.ReplicasOptions{TTL: 2 * time.Second}) }
	g := &grants{ok: map[string]bool{"user:bob act resource:web-1": true, "user:eve act resource:web-1": true}}
	auditB, auditC := &events{}, &events{}
	a, _ := replica(t, sa, reps(sa), "a", g, nil)
	b, _ := replica(t, sb, reps(sb), "b", g, auditB)
	replica(t, sc, reps(sc), "c", g, auditC)
	if err := New(Config{ReplicaID: "a", Replicas: reps(open())}, sa, nil, nil, quiet).Join(ctx); err == nil {
		t.Fatal("a fourth replica took the live id a")
	}

	// sessions kill on B cuts A's session.
	o := openOn(t, a, "bob")
	if s, ok := b.Get(o.l.ID()); !ok || s.Replica != "a" {
		t.Fatalf("B's Get of A's session: %+v, %v", s, ok)
	}
	start := time.Now()
	if _, err := b.Kill(o.l.ID()); err != nil {
		t.Fatal(err)
	}
	t.Logf("kill on B cut A's session after %s", o.cutWithin(t, start, ReasonRevoked, time.Second))

	// A tuple removed on C cuts A's session.
	tu := store.Tuple{Object: "resource:web-1", Relation: "act", Subject: "user:bob"}
	if err := sc.WriteTuples(ctx, []store.Tuple{tu}, nil); err != nil {
		t.Fatal(err)
	}
	o = openOn(t, a, "bob")
	time.Sleep(100 * time.Millisecond) // the add's re-check is done
	g.set("user:bob act resource:web-1", false)
	start = time.Now()
	if err := sc.WriteTuples(ctx, nil, []store.Tuple{tu}); err != nil {
		t.Fatal(err)
	}
	t.Logf("tuple removal on C cut A's session after %s", o.cutWithin(t, start, ReasonPolicy, time.Second))

	// A dies with two sessions open.
	lost1, lost2 := openOn(t, a, "eve"), openOn(t, a, "eve")
	if list, err := b.List(ctx, "eve", false); err != nil || len(list) != 2 {
		t.Fatalf("B lists %d of A's sessions, %v; want 2", len(list), err)
	}
	sa.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := len(auditB.actions("session.lost")) + len(auditC.actions("session.lost"))
		if n == 2 {
			break
		}
		if n > 2 || time.Now().After(deadline) {
			t.Fatalf("session.lost events: B %+v, C %+v", auditB.actions("session.lost"), auditC.actions("session.lost"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, o := range []opened{lost1, lost2} {
		s, err := sb.GetSession(ctx, o.l.ID())
		if err != nil || s.State != "closed" || s.Reason != ReasonReplicaLost {
			t.Fatalf("A's session after A died: %+v, %v", s, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // no third event comes late
	if n := len(auditB.actions("session.lost")) + len(auditC.actions("session.lost")); n != 2 {
		t.Fatalf("%d session.lost events, want 2", n)
	}
	if list, err := b.List(ctx, "eve", false); err != nil || len(list) != 0 {
		t.Fatalf("B still lists %+v, %v", list, err)
	}
}
