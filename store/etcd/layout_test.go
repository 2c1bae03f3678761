package etcd_test

import (
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
)

// TestBulkKeysOutsideTheFeed writes audit events through the sequencer,
// a recording and a model big enough for blob chunks, then lists every
// key under the prefix: each one before "~" (the range the change feed
// watches) must be a record or a small index entry, never bulk data, or
// every replica's feed would carry every other replica's audit traffic.
func TestBulkKeysOutsideTheFeed(t *testing.T) {
	p := startEtcd(t)
	const prefix = "/layout/"
	s := open(t, p, prefix, nil)
	var got sync.Map
	var wg sync.WaitGroup
	appendFrom(t, s, "r", 4, 10, &got, &wg)
	wg.Wait()
	if err := s.AppendRecording(ctx, "sess-1", []byte(strings.Repeat("x", 700<<10))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendModel(ctx, store.ModelVersion{Actor: "bastion", Action: "load", Source: "model\n" + strings.Repeat("# pad\n", 120<<10)}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	// Records (a model version, the sequencer's key pair as a secret)
	// and small index entries.
	small := []string{"mv/", "mvn", "x/", "ku/", "ts/", "replicas/", "replica-reap/"}
	var bulk int
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), prefix)
		if strings.HasPrefix(k, "~") {
			bulk++
			continue
		}
		ok := false
		for _, sp := range small {
			ok = ok || strings.HasPrefix(k, sp)
		}
		if !ok {
			t.Errorf("key %q lies inside the change feed's range but is no record", k)
		}
	}
	if bulk == 0 {
		t.Fatalf("no bulk key under %s~ after events, a recording and a blob: %d keys in all", prefix, len(resp.Kvs))
	}
}

// TestOldLayoutRefused: a prefix holding the audit head of the earlier
// layout (eh, events under e/) is refused at Open, naming the key, rather
// than read as an empty log that a second chain would start beside.
func TestOldLayoutRefused(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "/old/", nil)
	if _, err := s.Client().Put(ctx, "/old/eh", `{"seq":3,"hash":"ab"}`); err != nil {
		t.Fatal(err)
	}
	_, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/old/", Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "earlier key layout") || !strings.Contains(err.Error(), "/old/eh") {
		t.Fatalf("Open on the old layout = %v; want a refusal naming /old/eh", err)
	}
	fresh, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{p.ClientURL}, Prefix: "/new/", Logger: quiet})
	if err != nil {
		t.Fatalf("Open on a fresh prefix: %v", err)
	}
	fresh.Close()
}
