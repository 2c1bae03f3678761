package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CreateSecret stores value under name only if no secret of that name
// exists, in one transaction, and returns what is stored: value when it
// was created, the existing secret otherwise. Replicas starting together
// thus agree on one host key and one user CA.
func (s *Store) CreateSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := checkName("secret name", name); err != nil {
		return nil, err
	}
	val, _, err := s.encode(ctx, value)
	if err != nil {
		return nil, err
	}
	key := s.k(pSecret + name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd: create secret: %w", err)
	}
	if resp.Succeeded {
		return append([]byte(nil), value...), nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, fmt.Errorf("etcd: create secret %s: lost and not found; retry", name)
	}
	return s.decode(ctx, kvs[0].Value, resp.Header.Revision)
}
