package requests

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// Two replicas on one real etcd: `request create --wait` on A returns as
// soon as a reviewer approves on B, with no polling.
func TestWaitSeesAnApprovalMadeOnAnotherReplica(t *testing.T) {
	p := etcdtest.Start(t)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pol := &fakePolicy{tuples: map[string]time.Time{}, now: time.Now, facts: map[string]bool{
		"user:alice view resource:host-1":   true,
		"user:carol view resource:host-1":   true,
		"user:bob reviewer resource:host-1": true,
	}}
	replica := func() *Service {
		st, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/requests/", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.PutResource(ctx, store.Resource{Name: "host-1", Kind: "ssh", Address: "a:22", Project: "payments"}); err != nil {
			t.Fatal(err)
		}
		s := New(Config{Feed: st}, st, pol, pol, &nopAudit{}, quiet)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { s.Run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return s
	}
	a, b := replica(), replica()
	deadline := time.Now().Add(10 * time.Second)
	for !a.following.Load() || !b.following.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the services do not follow the feed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r, err := a.Create(ctx, authn.Principal{User: "alice"}, []string{"host-1"}, "INC-7", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan store.AccessRequest, 1)
	go func() {
		w, err := a.Wait(ctx, r.ID)
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	time.Sleep(100 * time.Millisecond) // A waits
	start := time.Now()
	if _, err := b.Approve(ctx, authn.Principal{User: "bob"}, r.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-got:
		if w.State != Approved {
			t.Fatalf("Wait returned %s", w.State)
		}
		t.Logf("A's Wait returned %s after B's approval", time.Since(start))
	case <-time.After(time.Second): // well under Wait's 5 s poll
		t.Fatal("A's Wait did not see B's approval within 1 s")
	}
}
