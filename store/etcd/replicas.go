package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/sshbastion/bastion/store"
)

// Replica liveness: each replica holds the key replicas/<id> on a lease of
// its own (a concurrency.Session, kept alive in the background). A replica
// that dies stops renewing; etcd deletes its key once the lease expires,
// and every other replica's watch of replicas/ sees the delete. The reap
// lock (a concurrency.Mutex under replica-reap/<id>) lets exactly one
// survivor at a time end a dead replica's sessions. Neither prefix is a
// record, so the change feed ignores both.
const (
	pReplica     = "replicas/"
	pReplicaReap = "replica-reap/"
)

// ErrReplicaExists is returned by Join when the id is held by a live
// replica; it wraps store.ErrExists.
var ErrReplicaExists = fmt.Errorf("etcd: replica id is live already: %w", store.ErrExists)

// ReplicasOptions configures NewReplicas.
type ReplicasOptions struct {
	// TTL is the lease: how long after its last renewal a silent replica
	// counts as dead (default 5 s, at least 2 s).
	TTL time.Duration
	// Logger receives lease losses and renewals; the store's if nil.
	Logger *slog.Logger
}

// Replicas is the liveness of the bastion processes sharing one etcd
// prefix. One value serves one Join.
type Replicas struct {
	s   *Store
	ttl int
	log *slog.Logger

	mu   sync.Mutex
	id   string
	sess *concurrency.Session // the current lease; replaced after a loss
}

// NewReplicas returns the liveness of the replicas of s.
func NewReplicas(s *Store, opts ReplicasOptions) *Replicas {
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Second
	}
	ttl := int((opts.TTL + time.Second - 1) / time.Second)
	if ttl < 2 {
		ttl = 2
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	return &Replicas{s: s, ttl: ttl, log: opts.Logger}
}

type replicaRecord struct {
	ID     string    `json:"id"`
	Joined time.Time `json:"joined"`
}

// Join makes id live until ctx ends, then revokes its lease (its key goes
// at once). It fails with ErrReplicaExists if a live replica holds id: a
// replica never steals another's id. The channel delivers the id of every
// other replica whose key goes (its lease expired, or it left), and closes
// when ctx ends. If this replica's own key goes (its lease lost while etcd
// was unreachable for longer than the TTL, or a delete), it puts it back,
// on a new lease if needed, unless another process took the id meanwhile.
func (r *Replicas) Join(ctx context.Context, id string) (<-chan string, error) {
	if err := checkName("replica id", id); err != nil {
		return nil, err
	}
	if strings.Contains(id, "/") {
		return nil, fmt.Errorf("etcd: replica id %q contains /", id)
	}
	r.mu.Lock()
	if r.id != "" {
		r.mu.Unlock()
		return nil, fmt.Errorf("etcd: this Replicas has joined as %s already", r.id)
	}
	r.id = id
	r.mu.Unlock()
	// The lease lives on a context of its own, so that leaving can still
	// revoke it after ctx ended.
	lctx, lcancel := context.WithCancel(context.WithoutCancel(ctx))
	sess, rev, err := r.register(ctx, lctx, id)
	if err != nil {
		lcancel()
		r.mu.Lock()
		r.id = ""
		r.mu.Unlock()
		return nil, err
	}
	r.mu.Lock()
	r.sess = sess
	r.mu.Unlock()
	lost := make(chan string, 64)
	gone := make(chan struct{}, 1)
	go r.keep(ctx, lctx, lcancel, id, gone)
	go r.watch(ctx, id, rev, lost, gone)
	return lost, nil
}

// register takes a lease and creates the key of id on it, only if absent.
// It returns the revision of the write.
func (r *Replicas) register(ctx, lctx context.Context, id string) (*concurrency.Session, int64, error) {
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lease, err := r.s.cli.Grant(gctx, int64(r.ttl))
	if err != nil {
		return nil, 0, fmt.Errorf("etcd: replica lease: %w", err)
	}
	sess, err := concurrency.NewSession(r.s.cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(r.ttl), concurrency.WithContext(lctx))
	if err != nil {
		_, _ = r.s.cli.Revoke(gctx, lease.ID)
		return nil, 0, fmt.Errorf("etcd: replica lease: %w", err)
	}
	rev, err := r.put(gctx, id, sess.Lease())
	if err != nil {
		_ = sess.Close()
		return nil, 0, err
	}
	return sess, rev, nil
}

// put creates the key of id on lease, only if absent.
func (r *Replicas) put(ctx context.Context, id string, lease clientv3.LeaseID) (int64, error) {
	val, _ := json.Marshal(replicaRecord{ID: id, Joined: time.Now().UTC()})
	key := r.s.k(pReplica + id)
	resp, err := r.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).Commit()
	if err == nil && !resp.Succeeded {
		err = ErrReplicaExists
	}
	if err != nil {
		return 0, fmt.Errorf("joining as replica %s: %w", id, err)
	}
	return resp.Header.Revision, nil
}

// keep renews the registration after a lost lease, and leaves (revoking
// the lease) when ctx ends.
func (r *Replicas) keep(ctx, lctx context.Context, lcancel context.CancelFunc, id string, gone <-chan struct{}) {
	defer lcancel()
	for {
		r.mu.Lock()
		sess := r.sess
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			// Close revokes the lease: the key goes now, not after the TTL.
			_ = sess.Close()
			return
		case <-gone:
			// The key went while the lease may still hold: put it back on
			// the same lease, or take a new one if that lease is gone too.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := r.put(pctx, id, sess.Lease())
			cancel()
			if err == nil {
				r.log.Warn("replica key was deleted; put back", "replica", id)
				continue
			}
			_ = sess.Close()
		case <-sess.Done():
		}
		r.log.Warn("replica lease lost (etcd unreachable for longer than its TTL); joining again", "replica", id, "ttl_s", r.ttl)
		backoff := 100 * time.Millisecond
		for {
			next, _, err := r.register(ctx, lctx, id)
			if err == nil {
				r.mu.Lock()
				r.sess = next
				r.mu.Unlock()
				r.log.Info("replica lease renewed", "replica", id)
				break
			}
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("replica: cannot join again yet", "replica", id, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// watch reports the replicas whose keys go after the revision rev of the
// join, until ctx ends. After a watch that broke for good (a compaction), it
// lists the live replicas again and reports those it knew that are gone.
func (r *Replicas) watch(ctx context.Context, self string, rev int64, lost chan<- string, gone chan<- struct{}) {
	defer close(lost)
	// Who is live now, and from when on the watch reports: every replica
	// that was live at or after the join is either known or watched.
	known := map[string]bool{}
	if ids, at, err := r.list(ctx); err == nil {
		for _, id := range ids {
			known[id] = true
		}
		rev = at
	}
	report := func(id string) bool {
		delete(known, id)
		if id == self {
			select {
			case gone <- struct{}{}:
			default:
			}
			return true
		}
		select {
		case lost <- id:
			return true
		case <-ctx.Done():
			return false
		}
	}
	p := r.s.k(pReplica)
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		broken := false
		for resp := range r.s.cli.Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if resp.CompactRevision != 0 || resp.Err() != nil {
				broken = resp.CompactRevision != 0
				break
			}
			for _, ev := range resp.Events {
				id := string(ev.Kv.Key[len(p):])
				rev = ev.Kv.ModRevision
				if ev.Type == mvccpb.DELETE {
					if !report(id) {
						cancel()
						return
					}
				} else {
					known[id] = true
				}
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if broken {
			now, at := r.known(ctx)
			for id := range known {
				if !now[id] && !report(id) {
					return
				}
			}
			known, rev = now, at
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// known lists the live replicas at the current revision, retrying until
// it can or ctx ends.
func (r *Replicas) known(ctx context.Context) (map[string]bool, int64) {
	for ctx.Err() == nil {
		ids, at, err := r.list(ctx)
		if err == nil {
			set := make(map[string]bool, len(ids))
			for _, id := range ids {
				set[id] = true
			}
			return set, at
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return map[string]bool{}, 0
}

func (r *Replicas) list(ctx context.Context) ([]string, int64, error) {
	p := r.s.k(pReplica)
	resp, err := r.s.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, 0, fmt.Errorf("etcd: live replicas: %w", err)
	}
	ids := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		ids = append(ids, string(kv.Key[len(p):]))
	}
	return ids, resp.Header.Revision, nil
}

// Live returns the ids of the live replicas, in id order.
func (r *Replicas) Live(ctx context.Context) ([]string, error) {
	ids, _, err := r.list(ctx)
	return ids, err
}

// Lock takes the reap lock of replica id, waiting for another holder, so
// that one survivor at a time ends id's sessions. It is held on this
// replica's lease: if this replica dies holding it, the lock is freed when
// the lease expires. Join must have succeeded.
func (r *Replicas) Lock(ctx context.Context, id string) (unlock func(), err error) {
	r.mu.Lock()
	sess := r.sess
	r.mu.Unlock()
	if sess == nil {
		return nil, errors.New("etcd: reap lock before Join")
	}
	mu := concurrency.NewMutex(sess, r.s.k(pReplicaReap+id))
	if err := mu.Lock(ctx); err != nil {
		return nil, fmt.Errorf("etcd: reap lock of replica %s: %w", id, err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mu.Unlock(uctx)
	}, nil
}
