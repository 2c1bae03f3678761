package badger

import (
	"context"
	"errors"
	"fmt"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// PutUser creates or replaces a user.
func (s *Store) PutUser(ctx context.Context, u store.User) error {
	if err := checkName("user name", u.Name); err != nil {
		return err
	}
	return s.published(recordChange(store.KindUser, u.Name, false),
		s.update(ctx, func(txn *bdb.Txn) error { return putJSON(txn, pUser+u.Name, u) }))
}

// GetUser returns the user, or store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	var u store.User
	err := s.get(ctx, pUser+name, &u)
	return u, err
}

// ListUsers returns every user, ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return list[store.User](ctx, s, pUser)
}

// DeleteUser removes the user and, in the same transaction, every key
// registered to it: a deleted user must not keep a way in. It returns
// store.ErrNotFound if the user does not exist (its keys, if any, are still
// removed).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := checkName("user name", name); err != nil {
		return err
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	var missing bool
	var gone []store.Change
	err := s.update(ctx, func(txn *bdb.Txn) error {
		missing = false
		gone = gone[:0]
		ok, err := exists(txn, pUser+name)
		if err != nil {
			return err
		}
		missing = !ok
		if ok {
			if err := txn.Delete([]byte(pUser + name)); err != nil {
				return err
			}
			gone = append(gone, recordChange(store.KindUser, name, true))
		}
		// Collect first: deleting while iterating a txn is not allowed.
		var idx [][]byte
		err = scan(ctx, txn, pUserKey+name+sep, func(k, _ []byte) error {
			idx = append(idx, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		prefix := len(pUserKey + name + sep)
		for _, k := range idx {
			if err := txn.Delete(k); err != nil {
				return err
			}
			if err := txn.Delete([]byte(pKey + string(k[prefix:]))); err != nil {
				return err
			}
			gone = append(gone, recordChange(store.KindKey, string(k[prefix:]), true))
		}
		return nil
	})
	if err == nil {
		s.changes.publish(gone...)
	}
	if err == nil && missing {
		return store.ErrNotFound
	}
	return err
}

// PutKey creates or replaces a key. If the fingerprint was registered to
// another user, it moves: the old user's index entry is removed so KeysOf
// never lists a key under a user it no longer belongs to.
func (s *Store) PutKey(ctx context.Context, k store.Key) error {
	if err := checkName("key fingerprint", k.Fingerprint); err != nil {
		return err
	}
	if err := checkName("key user", k.User); err != nil {
		return err
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	return s.published(recordChange(store.KindKey, k.Fingerprint, false), s.update(ctx, func(txn *bdb.Txn) error {
		var old store.Key
		switch err := getJSON(txn, pKey+k.Fingerprint, &old); {
		case err == nil:
			if old.User != k.User {
				if err := txn.Delete([]byte(pUserKey + old.User + sep + k.Fingerprint)); err != nil {
					return err
				}
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := putJSON(txn, pKey+k.Fingerprint, k); err != nil {
			return err
		}
		return txn.Set([]byte(pUserKey+k.User+sep+k.Fingerprint), nil)
	}))
}

// KeyByFingerprint returns the key, expired or not, or store.ErrNotFound.
func (s *Store) KeyByFingerprint(ctx context.Context, fingerprint string) (store.Key, error) {
	var k store.Key
	err := s.get(ctx, pKey+fingerprint, &k)
	return k, err
}

// KeysOf returns the keys of user (expired ones included), by fingerprint.
func (s *Store) KeysOf(ctx context.Context, user string) ([]store.Key, error) {
	if err := checkName("user name", user); err != nil {
		return nil, err
	}
	var out []store.Key
	err := s.db.View(func(txn *bdb.Txn) error {
		prefix := len(pUserKey + user + sep)
		return scan(ctx, txn, pUserKey+user+sep, func(ik, _ []byte) error {
			var k store.Key
			if err := getJSON(txn, pKey+string(ik[prefix:]), &k); err != nil {
				return fmt.Errorf("badger: key index for %s: %w", user, err)
			}
			out = append(out, k)
			return nil
		})
	})
	return out, err
}

// ListKeys returns every key, ordered by fingerprint.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	return list[store.Key](ctx, s, pKey)
}

// DeleteKey removes a key, or returns store.ErrNotFound.
func (s *Store) DeleteKey(ctx context.Context, fingerprint string) error {
	if err := checkName("key fingerprint", fingerprint); err != nil {
		return err
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	return s.published(recordChange(store.KindKey, fingerprint, true), s.update(ctx, func(txn *bdb.Txn) error {
		var k store.Key
		if err := getJSON(txn, pKey+fingerprint, &k); err != nil {
			return err
		}
		if err := txn.Delete([]byte(pUserKey + k.User + sep + fingerprint)); err != nil {
			return err
		}
		return txn.Delete([]byte(pKey + fingerprint))
	}))
}
