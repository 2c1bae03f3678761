package badger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/sshbastion/bastion/store"
)

// Replicas is replica liveness for a store that one process opens: the
// replicas that joined this value are live until their Join context
// ends, none is ever lost, and the reap lock is an in-process mutex. It
// has the methods of package etcd's Replicas, so that one code path of
// the session manager serves both backends.
type Replicas struct {
	mu    sync.Mutex
	live  map[string]bool
	locks map[string]*sync.Mutex
}

// NewReplicas returns the liveness of a single-process store.
func NewReplicas() *Replicas {
	return &Replicas{live: map[string]bool{}, locks: map[string]*sync.Mutex{}}
}

// ErrReplicaExists is returned by Join for an id that is live already; it
// wraps store.ErrExists.
var ErrReplicaExists = fmt.Errorf("badger: replica id is live already: %w", store.ErrExists)

// Join makes id live until ctx ends. The channel never delivers: no other
// process shares the store, so none can be lost; it closes when ctx ends.
func (r *Replicas) Join(ctx context.Context, id string) (<-chan string, error) {
	if id == "" {
		return nil, errors.New("badger: empty replica id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[id] {
		return nil, ErrReplicaExists
	}
	r.live[id] = true
	lost := make(chan string)
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		delete(r.live, id)
		r.mu.Unlock()
		close(lost)
	}()
	return lost, nil
}

// Live returns the ids that joined and have not left, in id order.
func (r *Replicas) Live(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.live))
	for id := range r.live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// Lock takes the reap lock of replica id.
func (r *Replicas) Lock(ctx context.Context, id string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	mu := r.locks[id]
	if mu == nil {
		mu = &sync.Mutex{}
		r.locks[id] = mu
	}
	r.mu.Unlock()
	mu.Lock()
	return mu.Unlock, nil
}
