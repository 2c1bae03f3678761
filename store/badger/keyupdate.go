package badger

import (
	"context"
	"fmt"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// UpdateKey implements store.Keys: one transaction reads the key, applies
// fn and writes it back; a missing key is store.ErrNotFound.
func (s *Store) UpdateKey(ctx context.Context, fingerprint string, fn func(*store.Key) error) error {
	if err := checkName("key fingerprint", fingerprint); err != nil {
		return err
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	return s.published(recordChange(store.KindKey, fingerprint, false), s.update(ctx, func(txn *bdb.Txn) error {
		var k store.Key
		if err := getJSON(txn, pKey+fingerprint, &k); err != nil {
			return err
		}
		user := k.User
		if err := fn(&k); err != nil {
			return err
		}
		if k.Fingerprint != fingerprint || k.User != user {
			return fmt.Errorf("badger: UpdateKey may not change the key's fingerprint or user")
		}
		return putJSON(txn, pKey+fingerprint, k)
	}))
}
