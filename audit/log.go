package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sshbastion/bastion/store"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// DefaultMaxBatch is the largest group commit when Options.MaxBatch is 0.
const DefaultMaxBatch = 1024

// DefaultGrace is Options.Grace when it is 0.
const DefaultGrace = 5 * time.Second

// Options configures New.
type Options struct {
	// Clock stamps events whose Time is zero; time.Now if nil.
	Clock store.Clock
	// Logger receives write failures and lost events; slog.Default if nil.
	Logger *slog.Logger
	// MaxBatch caps how many events one store write carries; 0 means
	// DefaultMaxBatch. A store that is a TxnLimiter caps batches further
	// (by count and by encoded size) to what one of its transactions
	// holds.
	MaxBatch int
	// Grace is how long Append and AppendAll keep waiting for the event
	// to be durable after the caller's context ended; 0 means
	// DefaultGrace.
	Grace time.Duration
	// Metrics, if set, counts appends, failures, conflicts and the events
	// reported to Lost, and times commits and their batch sizes (see
	// NewMetrics).
	Metrics *Metrics
}

// Log appends hash-chained events to a store.AuditLog with group commit.
// Other Logs (other replicas) may append to the same log at the same
// time: a batch that loses the chain head to one of them is re-chained
// after it and retried (see commit), so the log stays one chain. Its
// methods are safe for concurrent use.
type Log struct {
	st       store.AuditLog
	clock    store.Clock
	log      *slog.Logger
	maxOps   int // events per batch
	maxBytes int // estimated encoded bytes per batch
	grace    time.Duration

	lost        atomic.Uint64
	lostCounter prometheus.Counter
	conflicts   atomic.Uint64
	metrics     *Metrics

	// mu guards closed and, held shared while sending, keeps Close from
	// closing reqs under a sender.
	mu     sync.RWMutex
	closed bool
	reqs   chan *pending
	done   chan struct{} // closed when the writer has exited

	// Chain state, owned by the writer goroutine.
	lastSeq  uint64
	lastHash string
}

// pending.state: whether the caller still waits for the result.
const (
	waiting int32 = iota
	answered
	abandoned
)

type pending struct {
	ev     store.Event
	size   int // encodedSize(ev)
	state  atomic.Int32
	result chan error // buffered: the writer never blocks on a caller
}

// New starts a Log that continues the chain stored in st.
func New(st store.AuditLog, opts Options) (*Log, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	l := &Log{
		st: st, clock: opts.Clock, log: opts.Logger, grace: opts.Grace,
		lostCounter: opts.Metrics.LostEvents(), metrics: opts.Metrics,
		done: make(chan struct{}),
	}
	l.maxBytes, l.maxOps = batchLimits(st, opts.MaxBatch)
	l.reqs = make(chan *pending, l.maxOps)
	last, ok, err := st.LastEvent(context.Background())
	if err != nil {
		return nil, fmt.Errorf("audit: read last event: %w", err)
	}
	if ok {
		l.lastSeq, l.lastHash = last.Seq, last.Hash
		// New events chain onto the stored tail whatever it holds; a
		// tail that does not verify is worth an operator's attention
		// now rather than at the next audit verify.
		if Hash(last) != last.Hash {
			l.log.Error("audit: the last stored event does not match its hash; run audit verify", "seq", last.Seq)
		}
	} else if l.lastSeq, l.lastHash, err = l.tail(context.Background()); err != nil {
		return nil, fmt.Errorf("audit: read the checkpoint: %w", err)
	}
	go l.run()
	return l, nil
}

// Append records e and returns it as stored: bounded (see Bound), with
// Seq, PrevHash and Hash filled in, and Time set to the Clock if it was
// zero (always in UTC). Seq, PrevHash and Hash given by the caller are
// ignored. Append returns nil only once the event is durably stored; it
// fails only for an event without an action or with an unstorable time,
// after Close (ErrClosed), or when the store fails.
//
// The caller's context does not cancel the write: the event records
// something that happened, so it is handed to the writer even if ctx is
// already done (a client that disconnected mid-login still gets its
// auth event). If ctx ends first, Append keeps waiting up to
// Options.Grace longer, then returns an error wrapping ctx.Err(); the
// event may still be stored after that, and if its write then fails the
// Log reports it as lost (see Lost).
func (l *Log) Append(ctx context.Context, e store.Event) (store.Event, error) {
	p, err := l.prepare(e)
	if err != nil {
		return store.Event{}, err
	}
	wctx, stop := l.patience(ctx)
	defer stop()
	if err := l.submit(wctx, p); err != nil {
		return store.Event{}, err
	}
	if err := l.await(wctx, p); err != nil {
		return store.Event{}, err
	}
	return p.ev, nil
}

// AppendAll records events in their order, each as Append would, and
// returns once every one is durable or has failed. Handed over together,
// they are committed in as few batches as the writer can: one sync for
// many events.
//
// Events are independent: each is validated on its own, an invalid one
// (no action, say) fails alone, and the others are still stored. The
// result is nil if every event was stored, else a *BatchError whose Errs
// holds one entry per event (nil for each stored one); errors.Is sees
// through it (for instance to ErrClosed). The context is treated as in
// Append.
func (l *Log) AppendAll(ctx context.Context, events []store.Event) error {
	errs := make([]error, len(events))
	ps := make([]*pending, len(events))
	for i, e := range events {
		ps[i], errs[i] = l.prepare(e)
	}
	wctx, stop := l.patience(ctx)
	defer stop()
	var submitErr error
	for i, p := range ps {
		if p == nil {
			continue
		}
		// After one hand-off fails, the later ones are not tried: an
		// event stored after one that was not would reorder them.
		if submitErr == nil {
			submitErr = l.submit(wctx, p)
		}
		if submitErr != nil {
			errs[i], ps[i] = submitErr, nil
		}
	}
	for i, p := range ps {
		if p != nil {
			errs[i] = l.await(wctx, p)
		}
	}
	for _, err := range errs {
		if err != nil {
			return &BatchError{Errs: errs}
		}
	}
	return nil
}

// BatchError reports the events of an AppendAll call that were not stored.
type BatchError struct {
	// Errs has one entry per event given to AppendAll, in order: nil
	// for each event that was stored.
	Errs []error
}

// Failed returns how many events were not stored.
func (e *BatchError) Failed() int {
	n := 0
	for _, err := range e.Errs {
		if err != nil {
			n++
		}
	}
	return n
}

func (e *BatchError) Error() string {
	for i, err := range e.Errs {
		if err != nil {
			return fmt.Sprintf("audit: %d of %d events not stored (event %d: %v)", e.Failed(), len(e.Errs), i, err)
		}
	}
	return "audit: every event stored"
}

// Unwrap returns the per-event errors, for errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// prepare validates e, bounds it, and makes its pending entry.
func (l *Log) prepare(e store.Event) (*pending, error) {
	// Every check that could fail the store write is made here, per
	// event: in the writer, one bad event would fail its whole batch.
	if e.Action == "" {
		// Queries and reviews select on the action; an event without
		// one would be invisible to them.
		return nil, errors.New("audit: event without action")
	}
	if e.Time.IsZero() {
		e.Time = l.clock()
	}
	e.Time = e.Time.UTC()
	if y := e.Time.Year(); y < 0 || y > 9999 {
		// Not representable in RFC 3339, so not storable.
		return nil, fmt.Errorf("audit: event time %v out of range", e.Time)
	}
	// Bound rather than refuse: an action must leave an event however
	// long the login name or command an attacker chose, and the marker
	// keeps the original's length and hash.
	e, changed := bound(e)
	if !changed {
		// Own the map: the caller could change it before the writer
		// hashes it. (bound made a new one if it changed anything.)
		e.Details = maps.Clone(e.Details)
	}
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	return &pending{ev: e, size: encodedSize(e), result: make(chan error, 1)}, nil
}

// patience returns the context Append waits with: ctx's values but not its
// cancellation, done Options.Grace after ctx is, with an error wrapping
// ctx.Err() as its cause.
func (l *Log) patience(ctx context.Context) (context.Context, func()) {
	if ctx.Done() == nil {
		return ctx, func() {}
	}
	c, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var timer atomic.Pointer[time.Timer]
	stop := context.AfterFunc(ctx, func() {
		timer.Store(time.AfterFunc(l.grace, func() {
			cancel(fmt.Errorf("audit: event not stored %v after the caller's context ended: %w", l.grace, ctx.Err()))
		}))
	})
	return c, func() {
		stop()
		if t := timer.Load(); t != nil {
			t.Stop()
		}
		cancel(nil)
	}
}

// submit hands p to the writer, in call order.
func (l *Log) submit(ctx context.Context, p *pending) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.reqs <- p:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// await waits for p's result until ctx (a patience context) is done.
func (l *Log) await(ctx context.Context, p *pending) error {
	select {
	case err := <-p.result:
		return err
	case <-ctx.Done():
		if p.state.CompareAndSwap(waiting, abandoned) {
			return context.Cause(ctx)
		}
		return <-p.result // answered meanwhile
	}
}

// Lost records that e, the event of an action that already happened (a
// kube response already sent, say), could not be stored: it counts it
// (LostCount, Options.Metrics) and logs it at Error level, since the
// audit trail now misses an action. The Log calls it itself for a write
// that failed after its caller stopped waiting.
func (l *Log) Lost(reason string, e store.Event) {
	l.lost.Add(1)
	if l.lostCounter != nil {
		l.lostCounter.Inc()
	}
	// Clipped: the event may be lost for its size, and the log line
	// should not carry it whole.
	l.log.Error("audit: event lost", "reason", reason, "action", clip(e.Action, 128),
		"actor", clip(e.Actor, 256), "target", clip(e.Target, 256), "time", e.Time)
}

// LostCount returns how many events were reported to Lost.
func (l *Log) LostCount() uint64 { return l.lost.Load() }

// Conflicts returns how many times a batch was re-chained because another
// writer had appended first.
func (l *Log) Conflicts() uint64 { return l.conflicts.Load() }

// Close stores every event already handed to Append, then stops the writer.
// Later Appends fail with ErrClosed. It is safe to call more than once.
func (l *Log) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.reqs)
	}
	l.mu.Unlock()
	<-l.done
	return nil
}

// Query returns the stored events matching f, in seq order.
func (l *Log) Query(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	return l.st.QueryEvents(ctx, f)
}
