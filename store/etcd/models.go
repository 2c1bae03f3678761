package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// The versions of the authorization model:
//
//	mv/<version, 20 decimal digits>    ModelVersion (JSON; a blob if large)
//	mvn                                the last version, in decimal
//
// AppendModel reads mvn and writes it back in a transaction that compares
// its mod revision, so concurrent appends (on any replica) retry and never
// share a version.
func modelKey(v uint64) string { return fmt.Sprintf("%s%020d", pModel, v) }

// AppendModel stores m as the next version.
func (s *Store) AppendModel(ctx context.Context, m store.ModelVersion) (store.ModelVersion, error) {
	var out store.ModelVersion
	err := retry(ctx, "append model", func() (bool, error) {
		last, rev, err := s.lastModel(ctx)
		if err != nil {
			return false, err
		}
		out = m
		out.Version = last + 1
		b, err := json.Marshal(out)
		if err != nil {
			return false, err
		}
		val, drop, err := s.encode(ctx, b)
		if err != nil {
			return false, err
		}
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(s.k(keyModelN)), "=", rev)).
			Then(clientv3.OpPut(s.k(modelKey(out.Version)), val),
				clientv3.OpPut(s.k(keyModelN), strconv.FormatUint(out.Version, 10))).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd: append model: %w", err)
		}
		if !tr.Succeeded {
			drop()
		}
		return tr.Succeeded, nil
	})
	if err != nil {
		return store.ModelVersion{}, err
	}
	return out, nil
}

// lastModel returns the last version and mvn's mod revision (0, 0 on an
// empty history).
func (s *Store) lastModel(ctx context.Context) (uint64, int64, error) {
	resp, err := s.cli.Get(ctx, s.k(keyModelN))
	if err != nil {
		return 0, 0, fmt.Errorf("etcd: model version: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, nil
	}
	v, err := strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("etcd: corrupt model version counter: %w", err)
	}
	return v, resp.Kvs[0].ModRevision, nil
}

// ModelVersion returns one version, or store.ErrNotFound.
func (s *Store) ModelVersion(ctx context.Context, version uint64) (store.ModelVersion, error) {
	var m store.ModelVersion
	err := s.getJSON(ctx, modelKey(version), &m)
	return m, err
}

// ModelVersions returns every version, oldest first.
func (s *Store) ModelVersions(ctx context.Context) ([]store.ModelVersion, error) {
	return list[store.ModelVersion](ctx, s, pModel)
}

// LatestModel returns the newest version, if there is one.
func (s *Store) LatestModel(ctx context.Context) (store.ModelVersion, bool, error) {
	last, _, err := s.lastModel(ctx)
	if err != nil || last == 0 {
		return store.ModelVersion{}, false, err
	}
	m, err := s.ModelVersion(ctx, last)
	if err != nil {
		return store.ModelVersion{}, false, err
	}
	return m, true, nil
}
