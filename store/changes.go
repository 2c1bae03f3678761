package store

import (
	"context"
	"sync"
)

// Kinds of Change. Every kind but KindReset names the record type written.
const (
	KindTuple     = "tuple"     // Key: Tuple.String(); Tuple is set
	KindModel     = "model"     // Key: the model version, in decimal
	KindResource  = "resource"  // Key: the Resource name
	KindUser      = "user"      // Key: the user name
	KindKey       = "key"       // Key: the key's fingerprint
	KindSession   = "session"   // Key: the session id
	KindCert      = "cert"      // Key: the revoked serial, in decimal
	KindRequest   = "request"   // Key: the access request id
	KindSecret    = "secret"    // Key: the secret name (the model's copy too)
	KindKubeToken = "kubetoken" // Key: the token's hash (KubeToken.Hash)
	// KindReset says that changes were lost (a slow consumer, a ring
	// or history that no longer reaches back to from): the consumer must
	// drop everything it derived from the store. See Changes.
	KindReset = "reset"
)

// Change says that one record was written. It is a notice, not a value:
// a consumer re-reads the store for the record's current state.
type Change struct {
	// Rev orders changes: it never decreases along one feed, every change
	// of one committed write has the same Rev, and a later write has a
	// higher one. A reset's Rev is the revision the feed continues from.
	Rev uint64
	// Kind is one of the Kind constants.
	Kind string
	// Key names the record within its kind (see the Kind constants).
	Key string
	// Deleted is set when the write removed the record.
	Deleted bool
	// Tuple is the tuple written, for KindTuple (with its Expires when
	// added; without when Deleted).
	Tuple *Tuple
}

// Changes is the change feed: how a process learns of writes made by
// itself and, on a shared backend, by every other replica.
//
// Every committed write of tuples, model versions, resources, users,
// keys, sessions, certificate revocations, access requests, secrets and
// kube tokens produces one Change per record written (DeleteUser: the user and each
// of its keys; WriteTuples: each tuple), published only after the write
// committed, so a read made after receiving a change sees that write (or
// a later one). Audit events and recordings produce none. A delete of a
// record that does not exist may or may not produce one.
//
// What a consumer must do:
//
//  1. Take rev := Rev(ctx), then load what it caches, then Watch(ctx,
//     rev): nothing committed after the load can be missed, and what
//     comes twice is harmless.
//  2. On a change, forget (or re-read) what it cached about Kind/Key.
//     Treat the change as an invalidation, not as the new value: two
//     concurrent writers' changes may arrive in either order.
//  3. A cache filled by a read that began before an invalidation of the
//     same record arrived must not keep that read's result (note a
//     generation before reading; discard the result if it moved).
//  4. On a KindReset change, drop everything derived from the store, of
//     every kind, and re-read on demand. Changes before the reset may
//     have been lost; every change after it is delivered.
//  5. When the channel closes without the consumer having cancelled ctx
//     (the store was closed), nothing it caches can be trusted any more:
//     drop it, and fail closed or Watch again.
//
// A feed never blocks writers: each watcher has a bounded buffer, and a
// watcher that falls that far behind loses its buffered changes for one
// KindReset. On a network backend a lost connection only delays changes:
// the watch resumes from the last revision it delivered, or, if that
// history is gone (compacted), delivers a reset. The feed goes quiet
// while the backend is unreachable; noticing that is the health check's
// job, not the feed's.
type Changes interface {
	// Watch delivers, in Rev order, every change with Rev > from, until
	// ctx is done or the store is closed; then the channel is closed.
	// If the changes after from are no longer all available, the first
	// delivery is a KindReset. A from above Rev is an error.
	Watch(ctx context.Context, from uint64) (<-chan Change, error)
	// Rev returns the store's current revision: every change published
	// so far has a Rev at most this.
	Rev(ctx context.Context) (uint64, error)
}

// DefaultWatchBuffer is how many undelivered changes a watcher's buffer
// holds before it is reset, unless a backend is configured otherwise.
const DefaultWatchBuffer = 4096

// ChangeQueue is one watcher's bounded buffer, shared by the backends so
// that every one delivers, resets and closes alike. The backend pushes
// changes in Rev order; a goroutine hands them to the consumer's channel.
// Push never blocks: when the buffer is full, its contents are replaced by
// one KindReset with the Rev of the newest change dropped.
type ChangeQueue struct {
	mu   sync.Mutex
	buf  []Change
	max  int
	wake chan struct{} // has a value when buf grew
	stop chan struct{} // closed by Close
	once sync.Once
	done chan struct{} // closed when the feed has ended
	out  chan Change
}

// NewChangeQueue returns a queue holding at most max changes (at least 2)
// and the channel it delivers to, which closes once ctx is done or Close
// is called.
func NewChangeQueue(ctx context.Context, max int) (*ChangeQueue, <-chan Change) {
	q := &ChangeQueue{max: max, wake: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), out: make(chan Change)}
	if q.max < 2 {
		q.max = 2
	}
	go q.run(ctx)
	return q, q.out
}

// Push queues c for delivery, or resets the buffer if it is full.
func (q *ChangeQueue) Push(c Change) {
	select {
	case <-q.done:
		return
	default:
	}
	q.mu.Lock()
	if len(q.buf) >= q.max {
		q.buf = append(q.buf[:0], Change{Rev: c.Rev, Kind: KindReset})
	} else {
		q.buf = append(q.buf, c)
	}
	q.mu.Unlock()
	q.signal()
}

// Reset drops what is buffered and queues a KindReset at rev: the feed
// continues with changes after rev.
func (q *ChangeQueue) Reset(rev uint64) {
	q.mu.Lock()
	q.buf = append(q.buf[:0], Change{Rev: rev, Kind: KindReset})
	q.mu.Unlock()
	q.signal()
}

// Close ends the feed: the channel closes without delivering what is
// still buffered. It is safe to call more than once.
func (q *ChangeQueue) Close() { q.once.Do(func() { close(q.stop) }) }

// Done is closed once the feed has ended (ctx done or Close), so that the
// backend can stop producing for it.
func (q *ChangeQueue) Done() <-chan struct{} { return q.done }

func (q *ChangeQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *ChangeQueue) run(ctx context.Context) {
	defer func() {
		q.mu.Lock()
		q.buf = nil
		q.mu.Unlock()
		close(q.done)
		close(q.out)
	}()
	for {
		q.mu.Lock()
		if len(q.buf) == 0 {
			q.buf = nil // let a large backing array go
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-q.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		c := q.buf[0]
		q.buf = q.buf[1:]
		q.mu.Unlock()
		select {
		case q.out <- c:
		case <-q.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}
