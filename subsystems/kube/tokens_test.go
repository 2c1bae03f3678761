package kube

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

type allowAll struct{}

func (allowAll) Check(context.Context, string, string, string) (bool, error) { return true, nil }

// A kubeconfig token is its session's: when the session is killed on
// another replica (which writes its record), the replica holding the
// session cuts it from its feed, and the token dies with it, within a
// second.
func TestTokenDiesWhenItsSessionIsKilledOnAnotherReplica(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reps := badger.NewReplicas()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	manager := func(id string) *sessions.Manager {
		m := sessions.New(sessions.Config{ReplicaID: id, Feed: st, Replicas: reps, SweepInterval: time.Hour}, st, allowAll{}, nil, quiet)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { m.Run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return m
	}
	a, b := manager("a"), manager("b")
	// Run joins the replicas in the background: until a is live, b counts
	// its sessions as a dead replica's and will not kill them.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		live, _ := reps.Live(ctx)
		if len(live) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas live after 5 s: %v", live)
		}
	}

	var ts tokens
	g := &grant{p: authn.Principal{User: "bob"}, r: store.Resource{Name: "prod", Kind: "kube"}}
	live, err := a.Open(ctx, sessions.Request{Principal: g.p, Resource: g.r, Kind: "kube", Target: "kubeconfig", Closer: g.end})
	if err != nil {
		t.Fatal(err)
	}
	g.live = live
	tok := newToken()
	ts.add(tok, g)
	if ended, _ := ts.get(tok).state(); !ended.IsZero() {
		t.Fatal("a fresh token has ended")
	}
	start := time.Now()
	if _, err := b.Kill(live.ID()); err != nil {
		t.Fatal(err)
	}
	for {
		ended, why := ts.get(tok).state()
		if !ended.IsZero() {
			if why != sessions.ReasonRevoked {
				t.Fatalf("the token ended as %q, want %q", why, sessions.ReasonRevoked)
			}
			t.Logf("the token died %s after the kill on the other replica", time.Since(start))
			return
		}
		if time.Since(start) > time.Second {
			t.Fatal("the token still works 1 s after its session was killed on another replica")
		}
		time.Sleep(time.Millisecond)
	}
}
