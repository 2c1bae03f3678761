package etcd_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
)

func join(t *testing.T, s *etcd.Store, id string) (*etcd.Replicas, <-chan string, context.CancelFunc) {
	t.Helper()
	r := etcd.NewReplicas(s, etcd.ReplicasOptions{TTL: 2 * time.Second})
	jctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	lost, err := r.Join(jctx, id)
	if err != nil {
		t.Fatalf("Join(%s): %v", id, err)
	}
	return r, lost, cancel
}

func expectLost(t *testing.T, lost <-chan string, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case id, ok := <-lost:
		if !ok || id != want {
			t.Fatalf("lost %q (open %v), want %q", id, ok, want)
		}
	case <-time.After(within):
		t.Fatalf("replica %s not reported lost within %s", want, within)
	}
	return time.Since(start)
}

// A replica that leaves is reported at once; one that dies (its client
// gone without revoking) once its lease expired; an id that is live
// cannot be taken; the reap lock is exclusive.
func TestReplicasJoinLeaveDieAndLock(t *testing.T) {
	p := startEtcd(t)
	prefix := "/replicas-test/"
	sa, sb, sc := open(t, p, prefix, nil), open(t, p, prefix, nil), open(t, p, prefix, nil)
	ra, lostA, leaveA := join(t, sa, "a")
	rb, _, leaveB := join(t, sb, "b")

	if _, err := etcd.NewReplicas(sc, etcd.ReplicasOptions{}).Join(ctx, "a"); !errors.Is(err, etcd.ErrReplicaExists) || !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Join of a live id: %v, want ErrReplicaExists", err)
	}
	if ids, err := ra.Live(ctx); err != nil || !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("Live = %v, %v", ids, err)
	}
	// The reap lock: a second holder waits for the first.
	unlock, err := ra.Lock(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	var second atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		u, err := rb.Lock(ctx, "x")
		if err != nil {
			t.Error(err)
			return
		}
		second.Store(true)
		u()
	}()
	time.Sleep(300 * time.Millisecond)
	if second.Load() {
		t.Fatal("two replicas hold the reap lock of x at once")
	}
	unlock()
	<-done

	// c joins, then dies: its client closes without revoking the lease.
	rc := etcd.NewReplicas(sc, etcd.ReplicasOptions{TTL: 2 * time.Second})
	if _, err := rc.Join(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	d := expectLost(t, lostA, "c", 10*time.Second)
	if d < time.Second {
		t.Fatalf("c reported lost after %s: before its 2 s lease could expire", d)
	}
	// b leaves: reported at once (its lease is revoked).
	leaveB()
	expectLost(t, lostA, "b", 2*time.Second)
	if ids, err := ra.Live(ctx); err != nil || !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("Live = %v, %v", ids, err)
	}
	// Once a has left, its id is free again.
	leaveA()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := etcd.NewReplicas(open(t, p, prefix, nil), etcd.ReplicasOptions{TTL: 2 * time.Second})
		jctx, cancel := context.WithCancel(ctx)
		_, err := r.Join(jctx, "a")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's id not free after it left: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := <-lostA; ok {
		t.Fatal("the lost channel stays open after a left")
	}
}

// A replica whose key vanished under it (its lease expired while etcd was
// unreachable, or a delete) joins again by itself under the same id.
func TestReplicasRejoinAfterLosingTheKey(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "", nil)
	r, _, _ := join(t, s, "a")
	leases, err := s.Client().Leases(ctx)
	if err != nil || len(leases.Leases) == 0 {
		t.Fatalf("no lease: %v", err)
	}
	for _, l := range leases.Leases {
		if _, err := s.Client().Revoke(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
	}
	waitLive(t, r, "a")
	// A plain delete of the key: put back too.
	if _, err := s.Client().Delete(ctx, s.Prefix()+"replicas/a"); err != nil {
		t.Fatal(err)
	}
	waitLive(t, r, "a")
}

func waitLive(t *testing.T, r *etcd.Replicas, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, err := r.Live(ctx)
		if err == nil && slices.Equal(ids, []string{id}) {
			// Back: and on a live lease, not the revoked one.
			time.Sleep(3 * time.Second)
			if ids, err := r.Live(ctx); err != nil || !slices.Equal(ids, []string{id}) {
				t.Fatalf("after rejoining, Live = %v, %v", ids, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not join again: Live = %v, %v", id, ids, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
