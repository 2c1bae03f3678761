package badger

import (
	"context"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// pRequest holds access requests by id: "ar/<id>" -> JSON.
const pRequest = "ar/"

// PutAccessRequest creates or replaces a request.
func (s *Store) PutAccessRequest(ctx context.Context, r store.AccessRequest) error {
	if err := checkName("access request id", r.ID); err != nil {
		return err
	}
	return s.published(recordChange(store.KindRequest, r.ID, false),
		s.update(ctx, func(txn *bdb.Txn) error { return putJSON(txn, pRequest+r.ID, r) }))
}

// GetAccessRequest returns the request, or store.ErrNotFound.
func (s *Store) GetAccessRequest(ctx context.Context, id string) (store.AccessRequest, error) {
	var r store.AccessRequest
	err := s.get(ctx, pRequest+id, &r)
	return r, err
}

// ListAccessRequests returns every request, ordered by id.
func (s *Store) ListAccessRequests(ctx context.Context) ([]store.AccessRequest, error) {
	return list[store.AccessRequest](ctx, s, pRequest)
}
