package badger

import (
	"context"
	"errors"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// PutResource creates or replaces a resource.
func (s *Store) PutResource(ctx context.Context, r store.Resource) error {
	if err := checkName("resource name", r.Name); err != nil {
		return err
	}
	return s.published(recordChange(store.KindResource, r.Name, false),
		s.update(ctx, func(txn *bdb.Txn) error { return putJSON(txn, pResource+r.Name, r) }))
}

// GetResource returns the resource, or store.ErrNotFound.
func (s *Store) GetResource(ctx context.Context, name string) (store.Resource, error) {
	var r store.Resource
	err := s.get(ctx, pResource+name, &r)
	return r, err
}

// ListResources returns every resource, ordered by name.
func (s *Store) ListResources(ctx context.Context) ([]store.Resource, error) {
	return list[store.Resource](ctx, s, pResource)
}

// DeleteResource removes a resource, or returns store.ErrNotFound.
func (s *Store) DeleteResource(ctx context.Context, name string) error {
	if err := checkName("resource name", name); err != nil {
		return err
	}
	return s.published(recordChange(store.KindResource, name, true),
		s.update(ctx, func(txn *bdb.Txn) error { return deleteExisting(txn, pResource+name) }))
}

// PutSession creates or replaces a session.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	if err := checkName("session id", sess.ID); err != nil {
		return err
	}
	return s.published(recordChange(store.KindSession, sess.ID, false),
		s.update(ctx, func(txn *bdb.Txn) error { return putJSON(txn, pSession+sess.ID, sess) }))
}

// GetSession returns the session, or store.ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var sess store.Session
	err := s.get(ctx, pSession+id, &sess)
	return sess, err
}

// ListSessions returns every session, ordered by id.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return list[store.Session](ctx, s, pSession)
}

// GetSecret returns a copy of the secret, or store.ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := s.db.View(func(txn *bdb.Txn) error {
		item, err := txn.Get([]byte(pSecret + name))
		if errors.Is(err, bdb.ErrKeyNotFound) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

// CreateSecret stores value under name only if no secret of that name
// exists, and returns what is stored (value, or the existing secret).
func (s *Store) CreateSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := checkName("secret name", name); err != nil {
		return nil, err
	}
	var out []byte
	created := false
	err := s.update(ctx, func(txn *bdb.Txn) error {
		item, err := txn.Get([]byte(pSecret + name))
		if err == nil {
			out, err = item.ValueCopy(nil)
			return err
		}
		if !errors.Is(err, bdb.ErrKeyNotFound) {
			return err
		}
		created, out = true, append([]byte(nil), value...)
		return txn.Set([]byte(pSecret+name), out)
	})
	if err != nil {
		return nil, err
	}
	if created {
		if err := s.published(recordChange(store.KindSecret, name, false), nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PutSecret creates or replaces a secret.
func (s *Store) PutSecret(ctx context.Context, name string, value []byte) error {
	if err := checkName("secret name", name); err != nil {
		return err
	}
	return s.published(recordChange(store.KindSecret, name, false), s.update(ctx, func(txn *bdb.Txn) error {
		return txn.Set([]byte(pSecret+name), append([]byte(nil), value...))
	}))
}
