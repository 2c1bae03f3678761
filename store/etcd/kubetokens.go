package etcd

import (
	"context"
	"fmt"

	"github.com/sshbastion/bastion/store"
)

// pKubeToken: kt/<hash> -> store.KubeToken (JSON). Its writes are changes
// of store.KindKubeToken (see changeOf).
const pKubeToken = "kt/"

// PutKubeToken creates or replaces a kube token record.
func (s *Store) PutKubeToken(ctx context.Context, t store.KubeToken) error {
	if err := checkName("kube token hash", t.Hash); err != nil {
		return err
	}
	return s.putJSON(ctx, pKubeToken+t.Hash, t)
}

// KubeToken returns the record of hash, or store.ErrNotFound.
func (s *Store) KubeToken(ctx context.Context, hash string) (store.KubeToken, error) {
	var t store.KubeToken
	if err := checkName("kube token hash", hash); err != nil {
		return t, err
	}
	err := s.getJSON(ctx, pKubeToken+hash, &t)
	return t, err
}

// DeleteKubeToken removes the record of hash, if any.
func (s *Store) DeleteKubeToken(ctx context.Context, hash string) error {
	if err := checkName("kube token hash", hash); err != nil {
		return err
	}
	if _, err := s.cli.Delete(ctx, s.k(pKubeToken+hash)); err != nil {
		return fmt.Errorf("etcd: delete kube token: %w", err)
	}
	return nil
}
