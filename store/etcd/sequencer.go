package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// The audit sequencer: one chain for every replica, written by one of
// them at a time.
//
// When replicas race for the chain head (as they did before), every lost race
// is a transaction proposed and replicated for nothing, and the replica
// next to the etcd leader wins most turns. Instead, each replica puts its
// batch, unchained, into an inbox key of its own, ~ai/<writer>/<n>, which
// never conflicts. One replica, elected through etcd
// (concurrency.Election under ~seq/; leadership is long-lived), sees
// the inboxes through a watch, chains every waiting batch after the head
// and commits them in one transaction: the events as blocks (blocks.go),
// the new head, and for each inbox key its deletion and a receipt under
// ~ak/<writer>/<n>, the seq and hash its batch was chained after. The
// transaction compares the head and each inbox key's revision, so a batch
// is chained once or not at all, whoever sweeps it. Each writer watches
// its own receipts (not its inbox: that would send every batch back to
// the writer that put it) and answers when its receipt arrives: the
// events are then committed by a quorum.
//
// The leader's own batches skip the inbox. A writer whose batch is not
// swept within selfSweepAfter (the leader died and its election lease has
// not expired yet, or nobody campaigns) sweeps its own batch itself, with
// the same compares, so progress never depends on the election; the
// election only stops writers from racing.

const (
	pInbox      = "~ai/"
	pReceipt    = "~ak/"
	pSeqElect   = "~seq/"
	seqTTL      = 2                // seconds: the sequencer's election lease
	sweepOps    = (txnOps - 8) / 2 // inbox entries per sweep: a delete and a receipt each
	sweepWaitIn = time.Second      // selfSweepAfter
)

// appendTimeout bounds one append: without it, an append to an unreachable
// cluster would wait forever (the client waits for a connection); the
// audit Log then refuses the events.
const appendTimeout = 10 * time.Second

// errNotLeading sends a batch queued at a leader that lost its lead to
// the inbox instead.
var errNotLeading = errors.New("etcd: audit sequencer lost its lead")

// Chain chains events after seq and prev (seq 0 and "" on an empty log):
// it sets their seqs, prev hashes and hashes. Every writer must pass the
// same function.
type Chain = func(seq uint64, prev string, evs []store.Event) []store.Event

// inboxValue is an inbox key's value, a batch waiting (Events), or a
// receipt key's, the batch chained (Chained, with the seq and hash it
// follows).
type inboxValue struct {
	Events  []store.Event `json:"e,omitempty"`
	Chained bool          `json:"c,omitempty"`
	Seq     uint64        `json:"seq,omitempty"`
	Prev    string        `json:"prev,omitempty"`
	Last    string        `json:"last,omitempty"` // the batch's last hash, as chained
}

// sequencer is one Store's part in the audit sequencer.
type sequencer struct {
	s     *Store
	chain Chain
	id    string
	n     atomic.Uint64

	mu      sync.Mutex
	waiters map[string]chan inboxValue // receipt key -> its receipt
	garbage []string                   // receipts read, deleted with the next put

	leading atomic.Pointer[leader] // set while this store leads
	fwd     *forwarder             // the way to the leader (seqforward.go)
	closing atomic.Bool            // set by handOver: campaign no more
}

// AppendSequenced implements audit.Sequencer: it returns events chained
// after the chain's head once a quorum committed them, in one chain shared
// with every other writer under the prefix.
func (s *Store) AppendSequenced(ctx context.Context, events []store.Event, chain Chain) ([]store.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	s.seqOnce.Do(func() { s.seq.Store(s.startSequencer(chain)) })
	q := s.seq.Load()
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	if l := q.leading.Load(); l != nil {
		out, err := l.submit(ctx, events)
		if !errors.Is(err, errNotLeading) {
			return out, err
		}
	}
	out, err := q.fwd.forward(ctx, events)
	if !errors.Is(err, errNotForwarded) {
		if err == nil {
			q.fwd.forwarded.Add(1)
		}
		return out, err
	}
	q.fwd.fellBack.Add(1)
	return q.viaInbox(ctx, events)
}

// startSequencer starts this store's receipt watch and its campaign.
func (s *Store) startSequencer(chain Chain) *sequencer {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand never fails on supported systems
	q := &sequencer{s: s, chain: chain, id: hex.EncodeToString(b), waiters: map[string]chan inboxValue{}}
	q.fwd = q.startForwarder()
	q.learnLeader()
	ready := make(chan struct{})
	go q.watchReceipts(ready)
	go q.campaign()
	go q.sweepGarbage()
	// The first batch's receipt must not come before the watch that
	// delivers it exists (it would then be read only after sweepWaitIn).
	select {
	case <-ready:
	case <-time.After(sweepWaitIn):
	}
	return q
}

// sweepGarbage deletes the receipts already read that no put took along,
// every few seconds, until the store closes.
func (q *sequencer) sweepGarbage() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-q.s.ctx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		g := q.garbage
		if len(g) > txnOps {
			g = g[:txnOps]
		}
		q.garbage = q.garbage[len(g):]
		q.mu.Unlock()
		if len(g) == 0 {
			continue
		}
		ops := make([]clientv3.Op, len(g))
		for i, k := range g {
			ops[i] = clientv3.OpDelete(k)
		}
		ctx, cancel := context.WithTimeout(q.s.ctx, appendTimeout)
		if _, err := q.s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			q.mu.Lock()
			q.garbage = append(q.garbage, g...)
			q.mu.Unlock()
		}
		cancel()
	}
}

// viaInbox puts events into a new inbox key and waits for its receipt.
func (q *sequencer) viaInbox(ctx context.Context, events []store.Event) ([]store.Event, error) {
	key := q.s.k(fmt.Sprintf("%s%s/%020d", pInbox, q.id, q.n.Add(1)))
	val, err := json.Marshal(inboxValue{Events: events})
	if err != nil {
		return nil, fmt.Errorf("etcd: encode audit batch: %w", err)
	}
	if len(val) > txnBytes-blockBytes {
		return nil, fmt.Errorf("etcd: audit batch of %d bytes: %w", len(val), store.ErrTxnTooBig)
	}
	got := make(chan inboxValue, 1)
	rkey := receiptKey(q.s, key)
	q.mu.Lock()
	q.waiters[rkey] = got
	ops := []clientv3.Op{clientv3.OpPut(key, string(val))}
	n := min(len(q.garbage), txnOps-1)
	for _, g := range q.garbage[:n] {
		ops = append(ops, clientv3.OpDelete(g))
	}
	q.garbage = q.garbage[n:]
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.waiters, rkey)
		q.mu.Unlock()
	}()
	resp, err := q.s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd: queue audit batch: %w", err)
	}
	rev := resp.Header.Revision
	for {
		select {
		case r := <-got:
			return q.chained(key, r, events)
		case <-time.After(sweepWaitIn):
		case <-ctx.Done():
			return q.withdraw(key, rev, events)
		}
		// No receipt yet: read the key (a receipt the watch missed),
		// else chain the batch ourselves.
		e := entry{key: key, rev: rev, events: events}
		r, ok, err := q.s.sweepAlone(ctx, q.chain, e)
		if err == nil && ok {
			return q.chained(key, r, events)
		}
	}
}

// chained returns events chained as r says, and lets the receipt go.
func (q *sequencer) chained(key string, r inboxValue, events []store.Event) ([]store.Event, error) {
	q.mu.Lock()
	q.garbage = append(q.garbage, receiptKey(q.s, key))
	q.mu.Unlock()
	out := q.chain(r.Seq, r.Prev, events)
	// The sequencer chained the batch as it read it back from etcd: the
	// same hashes, unless encoding changed an event (then what this
	// writer would acknowledge is not what is stored).
	if got := out[len(out)-1].Hash; got != r.Last {
		return nil, fmt.Errorf("etcd: audit batch %s was stored with hash %s, chained here as %s", key, r.Last, got)
	}
	return out, nil
}

// withdraw takes a batch that timed out back out of the inbox: deleted
// while still waiting, it was never chained and the append fails; if it
// was swept meanwhile, its receipt says the append succeeded after all.
func (q *sequencer) withdraw(key string, rev int64, events []store.Event) ([]store.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	tr, err := q.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(receiptKey(q.s, key))).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd: audit batch %s: outcome unknown: %w", key, err)
	}
	if tr.Succeeded {
		return nil, fmt.Errorf("etcd: audit batch not chained within %s (no sequencer reached): %w", appendTimeout, context.DeadlineExceeded)
	}
	if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		var r inboxValue
		if json.Unmarshal(kvs[0].Value, &r) == nil && r.Chained {
			return q.chained(key, r, events)
		}
	}
	return nil, fmt.Errorf("etcd: audit batch %s vanished from the inbox", key)
}

// watchReceipts delivers the receipts of this writer's inbox keys, until
// the store closes; it resumes after a broken watch (a receipt missed
// meanwhile is read by its waiter after sweepWaitIn).
func (q *sequencer) watchReceipts(ready chan struct{}) {
	p := q.s.k(pReceipt + q.id + "/")
	var once sync.Once
	for q.s.ctx.Err() == nil {
		for resp := range q.s.cli.Watch(q.s.ctx, p, clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithFilterDelete()) {
			if resp.Created {
				once.Do(func() { close(ready) })
			}
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				var r inboxValue
				if json.Unmarshal(ev.Kv.Value, &r) != nil || !r.Chained {
					continue
				}
				q.mu.Lock()
				if w, ok := q.waiters[string(ev.Kv.Key)]; ok {
					select {
					case w <- r:
					default:
					}
				}
				q.mu.Unlock()
			}
		}
		select {
		case <-q.s.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// receiptKey is where the receipt of the inbox key key goes: ~ak/ in
// place of ~ai/.
func receiptKey(s *Store, key string) string {
	return s.k(pReceipt) + strings.TrimPrefix(key, s.k(pInbox))
}

// InFlight says how many batches a Log should hand AppendSequenced at
// once: two while this store leads or forwards to the leader (its batches
// skip the inbox and join the leader's queue, and a second one fills while
// the first is in a sweep), one otherwise (each batch is an inbox put;
// more of them, smaller, only cost proposals). Measured on P8: two in
// flight on every replica, forwarding, 15,100-16,400 events/s; one on
// followers 11,000-14,000; four or eight, no better.
func (s *Store) InFlight() int {
	if q := s.seq.Load(); q != nil && (q.leading.Load() != nil || q.fwd.ready()) {
		return seqLeaderInFlight
	}
	return 1
}

// seqLeaderInFlight: see InFlight.
const seqLeaderInFlight = 2
