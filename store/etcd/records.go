package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// keysPerTxn bounds the keys DeleteUser removes per transaction (two
// deletes and one compare each).
const keysPerTxn = (txnOps - 1) / 2

// PutUser creates or replaces a user.
func (s *Store) PutUser(ctx context.Context, u store.User) error {
	if err := checkName("user name", u.Name); err != nil {
		return err
	}
	return s.putJSON(ctx, pUser+u.Name, u)
}

// GetUser returns the user, or store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	var u store.User
	err := s.getJSON(ctx, pUser+name, &u)
	return u, err
}

// ListUsers returns every user, ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return list[store.User](ctx, s, pUser)
}

// DeleteUser removes the user and every key registered to it, and returns
// store.ErrNotFound if the user did not exist (its keys are still
// removed). The user and its first keysPerTxn keys go in one transaction;
// a user with more keys needs several, each removing keys that are still
// the user's (a key moved to another user meanwhile survives).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := checkName("user name", name); err != nil {
		return err
	}
	idx := s.k(pUserKey + name + sep)
	deleted := false
	err := retry(ctx, "delete user", func() (bool, error) {
		resp, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.k(pUser+name), clientv3.WithKeysOnly()),
			clientv3.OpGet(idx, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(keysPerTxn)),
		).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd: delete user: %w", err)
		}
		rev := resp.Header.Revision
		userKV, keys := resp.Responses[0].GetResponseRange(), resp.Responses[1].GetResponseRange()
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		if len(userKV.Kvs) > 0 {
			ops = append(ops, clientv3.OpDelete(s.k(pUser+name)))
		}
		for _, kv := range keys.Kvs {
			fp := string(kv.Key[len(idx):])
			// Still this user's key: unchanged since the read.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.k(pKey+fp)), "<", rev+1))
			ops = append(ops, clientv3.OpDelete(string(kv.Key)), clientv3.OpDelete(s.k(pKey+fp)))
		}
		if len(ops) == 0 {
			return true, nil
		}
		if !keys.More {
			// The last round: no key may have been added since.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(idx).WithPrefix(), "<", rev+1))
		}
		tr, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd: delete user: %w", err)
		}
		if tr.Succeeded && len(userKV.Kvs) > 0 {
			deleted = true
		}
		return tr.Succeeded && !keys.More, nil
	})
	if err == nil && !deleted {
		return store.ErrNotFound
	}
	return err
}

// PutKey creates or replaces a key. A fingerprint re-put under another
// user moves: the old user's index entry goes in the same transaction.
func (s *Store) PutKey(ctx context.Context, k store.Key) error {
	if err := checkName("key fingerprint", k.Fingerprint); err != nil {
		return err
	}
	if err := checkName("key user", k.User); err != nil {
		return err
	}
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	rec := s.k(pKey + k.Fingerprint)
	return retry(ctx, "put key", func() (bool, error) {
		resp, err := s.cli.Get(ctx, rec)
		if err != nil {
			return false, fmt.Errorf("etcd: put key: %w", err)
		}
		var modRev int64
		ops := []clientv3.Op{clientv3.OpPut(rec, string(b)), clientv3.OpPut(s.k(pUserKey+k.User+sep+k.Fingerprint), "")}
		if len(resp.Kvs) > 0 {
			modRev = resp.Kvs[0].ModRevision
			var old store.Key
			if err := json.Unmarshal(resp.Kvs[0].Value, &old); err != nil {
				return false, fmt.Errorf("etcd: key %s: %w", k.Fingerprint, err)
			}
			if old.User != k.User {
				ops = append(ops, clientv3.OpDelete(s.k(pUserKey+old.User+sep+k.Fingerprint)))
			}
		}
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(rec), "=", modRev)).Then(ops...).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd: put key: %w", err)
		}
		return tr.Succeeded, nil
	})
}

// KeyByFingerprint returns the key, expired or not, or store.ErrNotFound.
func (s *Store) KeyByFingerprint(ctx context.Context, fingerprint string) (store.Key, error) {
	var k store.Key
	err := s.getJSON(ctx, pKey+fingerprint, &k)
	return k, err
}

// KeysOf returns the keys of user (expired ones included), by fingerprint:
// one read of the index, then one transaction of reads per txnOps keys.
func (s *Store) KeysOf(ctx context.Context, user string) ([]store.Key, error) {
	if err := checkName("user name", user); err != nil {
		return nil, err
	}
	idx := pUserKey + user + sep
	var fps []string
	err := s.scan(ctx, idx, func(key string, _ []byte, _ int64) error {
		fps = append(fps, key[len(idx):])
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []store.Key
	for len(fps) > 0 {
		n := min(len(fps), txnOps)
		ops := make([]clientv3.Op, n)
		for i, fp := range fps[:n] {
			ops[i] = clientv3.OpGet(s.k(pKey + fp))
		}
		fps = fps[n:]
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd: keys of %s: %w", user, err)
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				var k store.Key
				if err := json.Unmarshal(kv.Value, &k); err != nil {
					return nil, err
				}
				// Moved since the index was read: no longer user's.
				if k.User == user {
					out = append(out, k)
				}
			}
		}
	}
	return out, nil
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
	rec := s.k(pKey + fingerprint)
	return retry(ctx, "delete key", func() (bool, error) {
		resp, err := s.cli.Get(ctx, rec)
		if err != nil {
			return false, fmt.Errorf("etcd: delete key: %w", err)
		}
		if len(resp.Kvs) == 0 {
			return false, store.ErrNotFound
		}
		var k store.Key
		if err := json.Unmarshal(resp.Kvs[0].Value, &k); err != nil {
			return false, err
		}
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(rec), "=", resp.Kvs[0].ModRevision)).
			Then(clientv3.OpDelete(s.k(pUserKey+k.User+sep+fingerprint)), clientv3.OpDelete(rec)).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd: delete key: %w", err)
		}
		return tr.Succeeded, nil
	})
}

// PutResource creates or replaces a resource.
func (s *Store) PutResource(ctx context.Context, r store.Resource) error {
	if err := checkName("resource name", r.Name); err != nil {
		return err
	}
	return s.putJSON(ctx, pResource+r.Name, r)
}

// GetResource returns the resource, or store.ErrNotFound.
func (s *Store) GetResource(ctx context.Context, name string) (store.Resource, error) {
	var r store.Resource
	err := s.getJSON(ctx, pResource+name, &r)
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
	return s.deleteExisting(ctx, pResource+name)
}

// deleteExisting deletes key, or returns store.ErrNotFound if it is absent.
func (s *Store) deleteExisting(ctx context.Context, key string) error {
	resp, err := s.cli.Delete(ctx, s.k(key), clientv3.WithPrevKV())
	if err != nil {
		return fmt.Errorf("etcd: delete: %w", err)
	}
	if resp.Deleted == 0 {
		return store.ErrNotFound
	}
	for _, kv := range resp.PrevKvs {
		s.dropPrev(kv.Value)
	}
	return nil
}

// PutSession creates or replaces a session.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	if err := checkName("session id", sess.ID); err != nil {
		return err
	}
	return s.putJSON(ctx, pSession+sess.ID, sess)
}

// GetSession returns the session, or store.ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var sess store.Session
	err := s.getJSON(ctx, pSession+id, &sess)
	return sess, err
}

// ListSessions returns every session, ordered by id.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return list[store.Session](ctx, s, pSession)
}

// GetSecret returns a copy of the secret, or store.ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	resp, err := s.cli.Get(ctx, s.k(pSecret+name))
	if err != nil {
		return nil, fmt.Errorf("etcd: get secret: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, store.ErrNotFound
	}
	// The response's bytes are the caller's own.
	return s.decode(ctx, resp.Kvs[0].Value, resp.Header.Revision)
}

// PutSecret creates or replaces a secret (chunked if large).
func (s *Store) PutSecret(ctx context.Context, name string, value []byte) error {
	if err := checkName("secret name", name); err != nil {
		return err
	}
	return s.putValue(ctx, pSecret+name, value)
}

// certKey: crl/<serial, 20 decimal digits>, so key order is serial order.
func certKey(serial uint64) string { return fmt.Sprintf("%s%020d", pCert, serial) }

// RevokeCert records a revoked serial, replacing an earlier record of it.
func (s *Store) RevokeCert(ctx context.Context, r store.CertRevocation) error {
	return s.putJSON(ctx, certKey(r.Serial), r)
}

// CertRevoked returns the revocation of serial, if there is one.
func (s *Store) CertRevoked(ctx context.Context, serial uint64) (store.CertRevocation, bool, error) {
	var r store.CertRevocation
	err := s.getJSON(ctx, certKey(serial), &r)
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
	return list[store.CertRevocation](ctx, s, pCert)
}

// PutAccessRequest creates or replaces a request.
func (s *Store) PutAccessRequest(ctx context.Context, r store.AccessRequest) error {
	if err := checkName("access request id", r.ID); err != nil {
		return err
	}
	return s.putJSON(ctx, pRequest+r.ID, r)
}

// GetAccessRequest returns the request, or store.ErrNotFound.
func (s *Store) GetAccessRequest(ctx context.Context, id string) (store.AccessRequest, error) {
	var r store.AccessRequest
	err := s.getJSON(ctx, pRequest+id, &r)
	return r, err
}

// ListAccessRequests returns every request, ordered by id.
func (s *Store) ListAccessRequests(ctx context.Context) ([]store.AccessRequest, error) {
	return list[store.AccessRequest](ctx, s, pRequest)
}
