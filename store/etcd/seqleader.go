package etcd

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/sshbastion/bastion/store"
)

// entry is one batch to chain: from an inbox key (key, and its mod
// revision when read) or the leader's own (key empty, answered on done).
type entry struct {
	key    string
	rev    int64
	events []store.Event
	done   chan sweepResult
}

type sweepResult struct {
	events []store.Event
	err    error
}

// leader is a sequencer while it leads: its own batches wait in queue.
type leader struct {
	q *sequencer

	mu      sync.Mutex
	queue   []*entry
	stopped bool
	signal  chan struct{}

	// drain, closed by handOver, ends the lead once the sweeps in flight
	// are done; drained is closed when run has returned.
	drain, drained chan struct{}
	drainOnce      sync.Once
}

// submit queues the leader's own batch and waits for its outcome; every
// batch taken is answered, committed or not.
func (l *leader) submit(ctx context.Context, events []store.Event) ([]store.Event, error) {
	e := &entry{events: events, done: make(chan sweepResult, 1)}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil, errNotLeading
	}
	l.queue = append(l.queue, e)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
	r := <-e.done
	return r.events, r.err
}

// campaign keeps this store in the sequencer's election until it closes,
// and leads whenever elected.
func (q *sequencer) campaign() {
	for q.s.ctx.Err() == nil && !q.closing.Load() {
		if err := q.leadOnce(); err != nil && q.s.ctx.Err() == nil {
			q.s.log.Debug("etcd: audit sequencer campaign", "err", err)
			select {
			case <-q.s.ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// leadOnce campaigns on a new election lease and leads until it is lost.
func (q *sequencer) leadOnce() error {
	sess, err := concurrency.NewSession(q.s.cli, concurrency.WithTTL(seqTTL), concurrency.WithContext(q.s.ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	// Prefer a sequencer whose etcd client reaches the raft leader: its
	// sweeps then skip the hop from a follower member to the leader, a
	// round trip on the chain's one path that every replica waits on.
	// Others join the election a little later, so
	// when several start together the nearest wins; the election decides
	// as ever, and nobody waits once one leads (Campaign queues).
	if !q.nearRaftLeader() {
		select {
		case <-q.s.ctx.Done():
		case <-time.After(seqCampaignDefer):
		}
	}
	el := concurrency.NewElection(sess, q.s.k(pSeqElect))
	octx, stopObserving := context.WithCancel(q.s.ctx)
	defer stopObserving()
	go q.observe(octx, el)
	announce, _ := json.Marshal(seqAnnounce{ID: q.id, Addr: q.fwd.addr}) // cannot fail
	if err := el.Campaign(q.s.ctx, string(announce)); err != nil {
		return err
	}
	l := &leader{q: q, signal: make(chan struct{}, 1), drain: make(chan struct{}), drained: make(chan struct{})}
	q.leading.Store(l)
	err = l.run(sess)
	q.leading.Store(nil)
	defer close(l.drained)
	l.refuseQueued()
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = el.Resign(rctx) // best effort: the lease expires anyway
	return err
}

// seqPipeline is how many sweeps the leader has in flight at once. Each
// compares the head that the one before it writes, so they commit in
// order or not at all; together they keep etcd's raft pipeline full, which
// batches concurrent proposals into one append, where one sweep at a time
// pays a whole round trip per sweep.
const seqPipeline = 3

// flight is one sweep in flight: what it took, the head it chains onto and
// the one it writes, and its outcome once done.
type flight struct {
	take  []*entry
	after head
	done  chan flightResult
}

type flightResult struct {
	out sweepOutcome
	err error
}

// run chains what waits, inboxes and own batches, until the lead ends.
func (l *leader) run(sess *concurrency.Session) error {
	s := l.q.s
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	h, headRev, err := s.chainHead(ctx)
	if err != nil {
		return err
	}
	p := s.k(pInbox)
	resp, err := s.cli.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	waiting := map[string]*entry{}
	for _, kv := range resp.Kvs {
		noteInbox(waiting, mvccpb.PUT, kv.Key, kv.Value, kv.ModRevision)
	}
	wch := s.cli.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	taken := map[string]bool{} // inbox keys in a sweep in flight
	apply := func(wr clientv3.WatchResponse, ok bool) error {
		if !ok || wr.Err() != nil {
			return fmt.Errorf("etcd: audit inbox watch ended: %v", wr.Err())
		}
		for _, ev := range wr.Events {
			if !taken[string(ev.Kv.Key)] {
				noteInbox(waiting, ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
			}
		}
		return nil
	}
	var flights []*flight
	// Fail whatever is in flight when the lead ends: own batches are
	// answered (a sweep that lands anyway is a stored event its caller
	// was told failed, never the reverse).
	defer func() {
		for _, f := range flights {
			r := <-f.done
			l.settle(f, r, nil, nil)
		}
	}()
	for {
		for len(flights) < seqPipeline {
			// A sweep behind another one in flight waits until a full
			// one is ready: a small one would cost a proposal, and a
			// chance to arrive before the one it follows (it then
			// fails, and so does everything behind it), for little.
			if len(flights) > 0 && l.backlog(waiting) < pipelineMin {
				break
			}
			take := l.take(waiting, taken)
			if len(take) == 0 {
				break
			}
			f := &flight{take: take, done: make(chan flightResult, 1)}
			// The first sweep in flight compares the head's revision,
			// as read or committed; the ones after it the head value
			// the sweep before them writes (seq and hash: unique).
			hc := clientv3.Compare(clientv3.Value(s.k(keyHead)), "=", headValue(h.Seq, h.Hash))
			if len(flights) == 0 {
				hc = clientv3.Compare(clientv3.ModRevision(s.k(keyHead)), "=", headRev)
			}
			p, err := prepareSweep(s, l.q.chain, h, take)
			if err != nil {
				l.settle(f, flightResult{err: err}, waiting, taken)
				break
			}
			f.after = p.after
			go func() {
				out, err := s.commitSweep(ctx, p, hc, take)
				f.done <- flightResult{out, err}
			}()
			flights = append(flights, f)
			h = f.after
		}
		var oldest chan flightResult
		if len(flights) > 0 {
			oldest = flights[0].done
		}
		select {
		case wr, ok := <-wch:
			if err := apply(wr, ok); err != nil {
				return err
			}
		case <-l.signal:
		case r := <-oldest:
			f := flights[0]
			flights = flights[1:]
			if r.err == nil && r.out.ok {
				l.settle(f, r, waiting, taken)
				headRev = r.out.headRev
				continue
			}
			// This sweep did not commit (or may not have): every later
			// one compares the head this one would have written, so
			// none of them commits either. Wait for them, put their
			// batches back, and go on from the head as it is.
			l.settle(f, r, waiting, taken)
			for _, g := range flights {
				l.settle(g, <-g.done, waiting, taken)
			}
			flights = nil
			h, headRev = r.out.head, r.out.headRev
			if r.err != nil || h.Hash == "" {
				if h, headRev, err = s.chainHead(ctx); err != nil {
					return err
				}
			}
		case <-l.drain:
			err := l.finish(flights, taken)
			flights = nil // answered
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// noteInbox applies one inbox key's state to waiting: a batch waits; a
// delete (or a value that holds no batch) means it is gone. Receipts
// live under their own keys (~ak/), never here.
func noteInbox(waiting map[string]*entry, t mvccpb.Event_EventType, key, val []byte, rev int64) {
	k := string(key)
	if t != mvccpb.PUT {
		delete(waiting, k)
		return
	}
	var v inboxValue
	if json.Unmarshal(val, &v) != nil || len(v.Events) == 0 {
		delete(waiting, k)
		return
	}
	waiting[k] = &entry{key: k, rev: rev, events: v.Events}
}

// pipelineMin is how many events must wait before a sweep goes out
// behind another one in flight.
const pipelineMin = 100

// backlog is how many events wait: in inboxes and in the queue.
func (l *leader) backlog(waiting map[string]*entry) int {
	n := 0
	for _, e := range waiting {
		n += len(e.events)
	}
	l.mu.Lock()
	for _, e := range l.queue {
		n += len(e.events)
	}
	l.mu.Unlock()
	return n
}

// take removes from waiting (marking them taken) and from the queue the
// batches of the next sweep: the oldest inbox batches, then own ones,
// within one transaction's limits.
func (l *leader) take(waiting map[string]*entry, taken map[string]bool) []*entry {
	inbox := make([]*entry, 0, len(waiting))
	for _, e := range waiting {
		inbox = append(inbox, e)
	}
	slices.SortFunc(inbox, func(a, b *entry) int { return cmp.Compare(a.rev, b.rev) })
	var take []*entry
	size := 0
	for _, e := range inbox {
		n := eventsSize(e.events)
		if len(take) >= sweepOps || (len(take) > 0 && size+n > txnBytes-blockBytes) {
			break
		}
		take, size = append(take, e), size+n
		delete(waiting, e.key)
		taken[e.key] = true
	}
	l.mu.Lock()
	own := 0
	for _, e := range l.queue {
		n := eventsSize(e.events)
		if len(take) > 0 && size+n > txnBytes-blockBytes {
			break
		}
		take, size, own = append(take, e), size+n, own+1
	}
	l.queue = l.queue[own:]
	l.mu.Unlock()
	return take
}

// settle answers a finished sweep. Committed: own batches get their
// events, inbox batches are done (their writers read the receipts). Not
// committed: own batches go back to the front of the queue and inbox
// batches back to waiting, unless gone (another writer chained them).
// Outcome unknown: own batches fail, since the sweep may still land and
// chaining them again could store them twice; inbox batches go back,
// their keys' revisions guard against that. With waiting nil (the lead
// ended) everything own fails.
func (l *leader) settle(f *flight, r flightResult, waiting map[string]*entry, taken map[string]bool) {
	var requeue []*entry
	for i, e := range f.take {
		if e.key != "" {
			if taken != nil {
				delete(taken, e.key)
			}
			if waiting != nil && (r.err != nil || !r.out.ok && !r.out.gone[i]) {
				waiting[e.key] = e
			}
			continue
		}
		switch {
		case r.err == nil && r.out.ok:
			e.done <- sweepResult{events: r.out.chained[i]}
		case r.err != nil:
			e.done <- sweepResult{err: r.err}
		case waiting == nil:
			// Not committed, and the lead ended: the batch goes to
			// the inbox instead (AppendSequenced).
			e.done <- sweepResult{err: errNotLeading}
		default:
			requeue = append(requeue, e)
		}
	}
	if len(requeue) > 0 {
		l.mu.Lock()
		l.queue = append(requeue, l.queue...)
		l.mu.Unlock()
	}
}
