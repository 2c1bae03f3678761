package badger

import (
	"context"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// pKubeToken: kt/<hash> -> store.KubeToken (JSON).
const pKubeToken = "kt/"

// PutKubeToken creates or replaces a kube token record.
func (s *Store) PutKubeToken(ctx context.Context, t store.KubeToken) error {
	if err := checkName("kube token hash", t.Hash); err != nil {
		return err
	}
	return s.published(recordChange(store.KindKubeToken, t.Hash, false),
		s.update(ctx, func(txn *bdb.Txn) error { return putJSON(txn, pKubeToken+t.Hash, t) }))
}

// KubeToken returns the record of hash, or store.ErrNotFound.
func (s *Store) KubeToken(ctx context.Context, hash string) (store.KubeToken, error) {
	var t store.KubeToken
	if err := checkName("kube token hash", hash); err != nil {
		return t, err
	}
	err := s.get(ctx, pKubeToken+hash, &t)
	return t, err
}

// DeleteKubeToken removes the record of hash, if any.
func (s *Store) DeleteKubeToken(ctx context.Context, hash string) error {
	if err := checkName("kube token hash", hash); err != nil {
		return err
	}
	return s.published(recordChange(store.KindKubeToken, hash, true),
		s.update(ctx, func(txn *bdb.Txn) error { return txn.Delete([]byte(pKubeToken + hash)) }))
}
