package etcd

import (
	"context"
	"encoding/json"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// How a sequencer's writers find its leader, and how a leader hands over
// when its store closes.

// seqCampaignDefer is how long a writer far from the raft leader waits
// before it campaigns.
const seqCampaignDefer = 300 * time.Millisecond

// nearRaftLeader says whether one of the client's endpoints is the etcd
// raft leader.
func (q *sequencer) nearRaftLeader() bool {
	for _, ep := range q.s.cli.Endpoints() {
		ctx, cancel := context.WithTimeout(q.s.ctx, time.Second)
		st, err := q.s.cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return true
		}
	}
	return false
}

// learnLeader reads who leads now, once, so that the first batches are
// forwarded too; observe keeps it current from then on.
func (q *sequencer) learnLeader() {
	ctx, cancel := context.WithTimeout(q.s.ctx, sweepWaitIn)
	defer cancel()
	resp, err := q.s.cli.Get(ctx, q.s.k(pSeqElect), append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	if err == nil {
		q.fwd.leader.Store(announceOf(resp))
	}
}

// announceOf is the leader's announcement in an election read: nil when
// none leads or its value cannot be read.
func announceOf(resp *clientv3.GetResponse) *seqAnnounce {
	var a seqAnnounce
	if len(resp.Kvs) == 0 || json.Unmarshal(resp.Kvs[0].Value, &a) != nil {
		return nil
	}
	return &a
}

// observe follows who leads the election, for forwarding, until ctx
// ends; a leader it cannot read counts as none (batches use the inbox).
func (q *sequencer) observe(ctx context.Context, el *concurrency.Election) {
	for ctx.Err() == nil {
		for resp := range el.Observe(ctx) {
			q.fwd.leader.Store(announceOf(&resp))
		}
		q.fwd.leader.Store(nil)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// finish ends a lead that hands over: queued batches are refused (their
// writers use the inbox), the sweeps in flight are waited for and
// answered.
func (l *leader) finish(flights []*flight, taken map[string]bool) error {
	l.refuseQueued()
	for _, f := range flights {
		l.settle(f, <-f.done, nil, taken)
	}
	return errNotLeading
}

// refuseQueued ends the queue: batches waiting in it, and any submitted
// after, are refused with errNotLeading (their writers use the inbox).
func (l *leader) refuseQueued() {
	l.mu.Lock()
	l.stopped = true
	left := l.queue
	l.queue = nil
	l.mu.Unlock()
	for _, e := range left {
		e.done <- sweepResult{err: errNotLeading}
	}
}

// handOver ends this store's part in the sequencer before it closes: a
// lead ends after its sweeps in flight, and the endpoint after its
// answers are written, so writers that forwarded a batch learn its
// outcome, or that it was never taken. Bounded: the store closes anyway.
func (q *sequencer) handOver() {
	q.closing.Store(true)
	deadline := time.After(appendTimeout / 2)
	if l := q.leading.Load(); l != nil {
		l.drainOnce.Do(func() { close(l.drain) })
		select {
		case <-l.drained:
		case <-deadline:
		}
	}
	if q.fwd.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = q.fwd.srv.Shutdown(ctx) // past it, Close in the store's AfterFunc
	}
}
