package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/sshbastion/bastion/store"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// DefaultMaxBatch is the largest group commit when Options.MaxBatch is 0.
const DefaultMaxBatch = 1024

// MaxEventSize caps the text of one event (the sum of its string fields and
// details). An event is written in one batch with others, so an oversized
// one must be refused up front rather than fail its neighbours' write.
const MaxEventSize = 64 << 10

// maxBatchBytes keeps one batch well inside a store transaction.
const maxBatchBytes = 4 << 20

// Options configures New.
type Options struct {
	// Clock stamps events whose Time is zero; time.Now if nil.
	Clock store.Clock
	// Logger receives write failures; slog.Default if nil.
	Logger *slog.Logger
	// MaxBatch caps how many events one store write carries. It must stay
	// below what one store transaction can hold. 0 means DefaultMaxBatch.
	MaxBatch int
}

// Log appends hash-chained events to a store.AuditLog with group commit.
// It must be the only writer of that log. Its methods are safe for
// concurrent use.
type Log struct {
	st       store.AuditLog
	clock    store.Clock
	log      *slog.Logger
	maxBatch int

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

type pending struct {
	ev     store.Event
	size   int
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
	l := &Log{
		st: st, clock: opts.Clock, log: opts.Logger, maxBatch: opts.MaxBatch,
		reqs: make(chan *pending, opts.MaxBatch),
		done: make(chan struct{}),
	}
	last, ok, err := st.LastEvent(context.Background())
	if err != nil {
		return nil, fmt.Errorf("audit: read last event: %w", err)
	}
	l.lastSeq, l.lastHash = 0, Genesis
	if ok {
		l.lastSeq, l.lastHash = last.Seq, last.Hash
		// New events chain onto the stored tail whatever it holds; a
		// tail that does not verify is worth an operator's attention
		// now rather than at the next audit verify.
		if Hash(last) != last.Hash {
			l.log.Error("audit: the last stored event does not match its hash; run audit verify", "seq", last.Seq)
		}
	}
	go l.run()
	return l, nil
}

// Append records e and returns it as stored: with Seq, PrevHash and Hash
// filled in, and Time set to the Clock if it was zero (always in UTC).
// Seq, PrevHash and Hash given by the caller are ignored. Append returns
// nil only once the event is durably stored. If ctx ends first, Append
// returns ctx.Err() and the event may or may not be recorded.
func (l *Log) Append(ctx context.Context, e store.Event) (store.Event, error) {
	p, err := l.prepare(e)
	if err != nil {
		return store.Event{}, err
	}
	if err := l.submit(ctx, p); err != nil {
		return store.Event{}, err
	}
	select {
	case err := <-p.result:
		if err != nil {
			return store.Event{}, err
		}
		return p.ev, nil
	case <-ctx.Done():
		return store.Event{}, ctx.Err()
	}
}

// AppendAll records events in their order and returns once every one is
// durable (or the first error). Handed over together, they are committed
// in as few batches as the writer can: one sync for many events.
func (l *Log) AppendAll(ctx context.Context, events []store.Event) error {
	ps := make([]*pending, 0, len(events))
	for _, e := range events {
		p, err := l.prepare(e)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := l.submit(ctx, p); err != nil {
			return err
		}
	}
	for _, p := range ps {
		select {
		case err := <-p.result:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// prepare validates e and makes its pending entry.
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
	size := eventSize(e)
	if size > MaxEventSize {
		return nil, fmt.Errorf("audit: event of %d bytes exceeds %d", size, MaxEventSize)
	}
	// Own the map: the caller could change it before the writer hashes it.
	e.Details = maps.Clone(e.Details)
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	return &pending{ev: e, size: size, result: make(chan error, 1)}, nil
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
		return ctx.Err()
	}
}

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

// run is the single writer: it drains what is pending, commits it as one
// batch, answers, and repeats until reqs is closed and empty.
func (l *Log) run() {
	defer close(l.done)
	batch := make([]*pending, 0, l.maxBatch)
	for {
		p, ok := <-l.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], p)
		bytes := p.size
	fill:
		for len(batch) < l.maxBatch && bytes < maxBatchBytes {
			select {
			case p, ok := <-l.reqs:
				if !ok {
					break fill // closed: commit this batch, then exit above
				}
				batch = append(batch, p)
				bytes += p.size
			default:
				break fill
			}
		}
		l.commit(batch)
	}
}

// commit chains batch onto the current tail and stores it with one
// AppendEvents call.
func (l *Log) commit(batch []*pending) {
	evs := make([]store.Event, len(batch))
	seq, prev := l.lastSeq, l.lastHash
	for i, p := range batch {
		e := p.ev
		seq++
		e.Seq, e.PrevHash = seq, prev
		e.Hash = Hash(e)
		prev = e.Hash
		evs[i] = e
	}
	// Not any caller's context: one caller giving up must not fail the
	// others' events.
	if err := l.st.AppendEvents(context.Background(), evs); err != nil {
		// Nothing is acknowledged and the chain stays where it was, so
		// the next batch reuses these seqs.
		l.log.Error("audit: append failed", "events", len(evs), "first_seq", evs[0].Seq, "err", err)
		l.resync()
		err = fmt.Errorf("audit: append: %w", err)
		for _, p := range batch {
			p.result <- err
		}
		return
	}
	l.lastSeq, l.lastHash = seq, prev
	for i, p := range batch {
		p.ev = evs[i]
		p.result <- nil
	}
}

// resync reloads the tail after a failed write, in case the store did
// write it after all (say, a sync error after the data reached the disk):
// continuing from a stale tail would make every later write fail its gap
// check.
func (l *Log) resync() {
	last, ok, err := l.st.LastEvent(context.Background())
	if err != nil || !ok || last.Seq <= l.lastSeq {
		return
	}
	l.log.Warn("audit: store holds events beyond the acknowledged tail; continuing from it",
		"acknowledged", l.lastSeq, "stored", last.Seq)
	l.lastSeq, l.lastHash = last.Seq, last.Hash
}

// eventSize is the length of e's text, close to its stored size.
func eventSize(e store.Event) int {
	n := len(e.Actor) + len(e.Action) + len(e.Target) + len(e.Decision) + len(e.Reason)
	for k, v := range e.Details {
		n += len(k) + len(v)
	}
	return n
}
