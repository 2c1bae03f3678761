package tuplecache_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
	"github.com/sshbastion/bastion/store/tuplecache"
)

// Two replicas on one etcd: a grant written or removed on B is seen by A's
// cache within a second, though A's MaxAge is an hour.
func TestEtcdGrantsFromAnotherReplica(t *testing.T) {
	p := etcdtest.Start(t)
	openStore := func() *etcd.Store {
		s, err := etcd.Open(bg, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/cache/",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := openStore(), openStore()
	c := tuplecache.New(a, tuplecache.Options{Feed: a, MaxAge: time.Hour})
	defer c.Close()
	waitFollowing(t, c, true)
	expectActs(t, c, 0)
	if err := b.WriteTuples(bg, []store.Tuple{grant}, nil); err != nil {
		t.Fatal(err)
	}
	d1 := expectActs(t, c, 1)
	if err := b.WriteTuples(bg, nil, []store.Tuple{grant}); err != nil {
		t.Fatal(err)
	}
	d2 := expectActs(t, c, 0)
	t.Logf("grant seen after %s, removal after %s", d1, d2)
}
