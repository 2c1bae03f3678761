package badger

import (
	"context"
	"encoding/binary"
	"errors"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// The versions of the authorization model:
//
//	mv/<version, 8 bytes big-endian>    ModelVersion (JSON)
//	mvn                                 the last version, 8 bytes big-endian
//
// Big-endian keys make key order version order. AppendModel reads mvn and
// writes it in the same transaction, so two concurrent appends conflict
// (badger tracks the read even when the key is missing) and the retry in
// update gives the second one the next number: versions are never reused.
const (
	pModel    = "mv/"
	modelLast = "mvn"
)

func modelKey(v uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(pModel), v)
}

// AppendModel stores m as the next version.
func (s *Store) AppendModel(ctx context.Context, m store.ModelVersion) (store.ModelVersion, error) {
	var out store.ModelVersion
	err := s.update(ctx, func(txn *bdb.Txn) error {
		last, err := lastModelVersion(txn)
		if err != nil {
			return err
		}
		out = m
		out.Version = last + 1
		if err := putJSON(txn, string(modelKey(out.Version)), out); err != nil {
			return err
		}
		return txn.Set([]byte(modelLast), binary.BigEndian.AppendUint64(nil, out.Version))
	})
	if err != nil {
		return store.ModelVersion{}, err
	}
	s.changes.publish(recordChange(store.KindModel, serialKey(out.Version), false))
	return out, nil
}

func lastModelVersion(txn *bdb.Txn) (uint64, error) {
	item, err := txn.Get([]byte(modelLast))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return errors.New("badger: corrupt model version counter")
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

// ModelVersion returns one version, or store.ErrNotFound.
func (s *Store) ModelVersion(ctx context.Context, version uint64) (store.ModelVersion, error) {
	var m store.ModelVersion
	err := s.get(ctx, string(modelKey(version)), &m)
	return m, err
}

// ModelVersions returns every version, oldest first.
func (s *Store) ModelVersions(ctx context.Context) ([]store.ModelVersion, error) {
	return list[store.ModelVersion](ctx, s, pModel)
}

// LatestModel returns the newest version, if there is one.
func (s *Store) LatestModel(ctx context.Context) (store.ModelVersion, bool, error) {
	if err := ctx.Err(); err != nil {
		return store.ModelVersion{}, false, err
	}
	var m store.ModelVersion
	found := false
	err := s.db.View(func(txn *bdb.Txn) error {
		last, err := lastModelVersion(txn)
		if err != nil || last == 0 {
			return err
		}
		found = true
		return getJSON(txn, string(modelKey(last)), &m)
	})
	if err != nil {
		return store.ModelVersion{}, false, err
	}
	return m, found, nil
}
