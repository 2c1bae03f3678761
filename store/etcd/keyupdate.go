package etcd

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// UpdateKey implements store.Keys: it reads the key, applies fn and
// writes it back in a transaction that compares the key's mod revision
// with the one read (retrying when another writer changed it); a key
// deleted meanwhile fails the compare and is then store.ErrNotFound, never
// written again.
func (s *Store) UpdateKey(ctx context.Context, fingerprint string, fn func(*store.Key) error) error {
	if err := checkName("key fingerprint", fingerprint); err != nil {
		return err
	}
	rec := s.k(pKey + fingerprint)
	return retry(ctx, "update key", func() (bool, error) {
		resp, err := s.cli.Get(ctx, rec)
		if err != nil {
			return false, fmt.Errorf("etcd: update key: %w", err)
		}
		if len(resp.Kvs) == 0 {
			return false, fmt.Errorf("etcd: key %s: %w", fingerprint, store.ErrNotFound)
		}
		var k store.Key
		if err := json.Unmarshal(resp.Kvs[0].Value, &k); err != nil {
			return false, fmt.Errorf("etcd: key %s: %w", fingerprint, err)
		}
		user := k.User
		if err := fn(&k); err != nil {
			return false, err
		}
		if k.Fingerprint != fingerprint || k.User != user {
			return false, fmt.Errorf("etcd: UpdateKey may not change the key's fingerprint or user")
		}
		b, err := json.Marshal(k)
		if err != nil {
			return false, err
		}
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(rec), "=", resp.Kvs[0].ModRevision)).
			Then(clientv3.OpPut(rec, string(b))).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd: update key: %w", err)
		}
		return tr.Succeeded, nil
	})
}
