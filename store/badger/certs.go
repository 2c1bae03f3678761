package badger

import (
	"context"
	"encoding/binary"
	"errors"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// pCertRevoked holds revoked user-certificate serials:
//
//	crl/<serial, 8 bytes big-endian>    CertRevocation (JSON)
//
// Big-endian keys make key order serial order, so listing needs no sort.
const pCertRevoked = "crl/"

func certKey(serial uint64) string {
	return string(binary.BigEndian.AppendUint64([]byte(pCertRevoked), serial))
}

// RevokeCert records a revoked serial, replacing an earlier record of it.
func (s *Store) RevokeCert(ctx context.Context, r store.CertRevocation) error {
	return s.published(recordChange(store.KindCert, serialKey(r.Serial), false),
		s.update(ctx, func(txn *bdb.Txn) error { return putJSON(txn, certKey(r.Serial), r) }))
}

// CertRevoked returns the revocation of serial, if there is one.
func (s *Store) CertRevoked(ctx context.Context, serial uint64) (store.CertRevocation, bool, error) {
	var r store.CertRevocation
	err := s.get(ctx, certKey(serial), &r)
	if errors.Is(err, store.ErrNotFound) {
		return store.CertRevocation{}, false, nil
	}
	if err != nil {
		return store.CertRevocation{}, false, err
	}
	return r, true, nil
}

// ListCertRevocations returns every revocation, ordered by serial.
func (s *Store) ListCertRevocations(ctx context.Context) ([]store.CertRevocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return list[store.CertRevocation](ctx, s, pCertRevoked)
}
