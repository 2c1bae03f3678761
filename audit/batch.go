package audit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sshbastion/bastion/store"
)

// TxnLimiter is implemented by stores whose transactions are bounded:
// TxnLimits says how much one AppendEvents transaction holds, at most
// maxOps events whose JSON encodings (encoding/json of store.Event) sum to
// at most maxBytes. The Log never hands the store a batch beyond them, so
// each batch is one atomic write. (store/badger derives them from its
// options; an etcd backend would say 128 ops and 1.5 MiB.)
type TxnLimiter interface {
	TxnLimits() (maxBytes, maxOps int)
}

// Sequencer is implemented by a store in which one writer at a time
// chains every writer's events (store/etcd: replicas hand their batches to
// an elected sequencer instead of racing for the head). AppendSequenced
// returns events chained after the chain's head by chain (seqs, prev
// hashes and hashes set) once they are durably stored; an error means they
// were not, as far as the store can tell. Several calls may be in flight
// at once: each batch is chained whole, in the order the sequencer takes
// them (the Log makes one at a time).
type Sequencer interface {
	AppendSequenced(ctx context.Context, events []store.Event, chain func(seq uint64, prev string, evs []store.Event) []store.Event) ([]store.Event, error)
}

// DefaultMaxBatchBytes bounds the estimated encoded size of one batch for a
// store that is not a TxnLimiter.
const DefaultMaxBatchBytes = 1 << 20

// batchLimits returns the writer's batch bounds: the store's, if it says,
// and never more than maxBatch events.
func batchLimits(st store.AuditLog, maxBatch int) (maxBytes, maxOps int) {
	maxBytes, maxOps = DefaultMaxBatchBytes, maxBatch
	if tl, ok := st.(TxnLimiter); ok {
		b, o := tl.TxnLimits()
		if b > 0 {
			maxBytes = b
		}
		if o > 0 {
			maxOps = min(maxOps, o)
		}
	}
	return maxBytes, maxOps
}

// run is the single writer: it drains what is pending, commits it in
// batches within the store's transaction limits, answers, and repeats
// until reqs is closed and empty.
func (l *Log) run() {
	defer close(l.done)
	seqr, sequenced := l.st.(Sequencer)
	running, finished := 0, make(chan struct{}, 8)
	defer func() {
		for ; running > 0; running-- {
			<-finished
		}
	}()
	batch := make([]*pending, 0, l.maxOps)
	var next *pending // taken from reqs, but did not fit the last batch
	for {
		p := next
		next = nil
		if p == nil {
			var ok bool
			if p, ok = <-l.reqs; !ok {
				return
			}
		}
		// The first event is taken whatever its size: alone, it is
		// within MaxEventSize, which every store holds.
		batch = append(batch[:0], p)
		bytes := p.size
	fill:
		for len(batch) < l.maxOps {
			select {
			case q, ok := <-l.reqs:
				if !ok {
					break fill // closed: commit this batch, then exit above
				}
				// A batch beyond one transaction would fail whole
				// (badger: "Txn is too big"), taking every event in
				// it: stop before it would.
				if bytes+q.size > l.maxBytes {
					next = q
					break fill
				}
				batch = append(batch, q)
				bytes += q.size
			default:
				break fill
			}
		}
		start := time.Now()
		// On a Sequencer, as many batches in flight as it says (one
		// unless it leads): measured on P8, a second batch in flight on
		// every replica made each one smaller and the sequencer's round
		// longer (5,145 events/s with one, 4,050 with two, 2,514 with
		// four).
		if sequenced {
			limit := 1
			if f, ok := l.st.(inFlighter); ok {
				limit = max(1, min(f.InFlight(), cap(finished)))
			}
			for ; running >= limit; running-- {
				<-finished
			}
			running++
			b := slices.Clone(batch)
			go func() {
				l.commitSequenced(seqr, b)
				l.metrics.committed(len(b), time.Since(start))
				finished <- struct{}{}
			}()
			clear(batch)
			continue
		}
		l.commit(batch)
		l.metrics.committed(len(batch), time.Since(start))
		clear(batch) // let answered events be collected
	}
}

// inFlighter is a Sequencer that says how many batches it takes at once
// now (store/etcd: two while it leads the sequence, one otherwise).
type inFlighter interface {
	InFlight() int
}

// commitSequenced hands batch to the store's sequencer and answers every
// caller: with the event as chained, or with the error. Nothing is
// answered before the store said the events are durable.
func (l *Log) commitSequenced(sq Sequencer, batch []*pending) {
	evs := make([]store.Event, len(batch))
	for i, p := range batch {
		evs[i] = p.ev
	}
	// Not any caller's context: one caller giving up must not fail the
	// others' events, nor its own.
	out, err := sq.AppendSequenced(context.Background(), evs, ChainAfter)
	if err == nil && len(out) != len(batch) {
		err = fmt.Errorf("store returned %d events for %d", len(out), len(batch))
	}
	if err != nil {
		l.log.Error("audit: append failed", "events", len(batch), "err", err)
		err = fmt.Errorf("audit: append: %w", err)
		l.metrics.failed(len(batch))
		for _, p := range batch {
			l.answer(p, err)
		}
		return
	}
	l.metrics.stored(len(out))
	for i, p := range batch {
		p.ev = out[i]
		l.answer(p, nil)
	}
}

// ChainAfter returns evs chained after seq and prev (seq 0 and "" on an
// empty log chain after Genesis): their seqs, prev hashes and hashes set.
// It is the chain a Sequencer's writers all pass.
func ChainAfter(seq uint64, prev string, evs []store.Event) []store.Event {
	if seq == 0 && prev == "" {
		prev = Genesis
	}
	out := make([]store.Event, len(evs))
	for i, e := range evs {
		seq++
		e.Seq, e.PrevHash = seq, prev
		e.Hash = Hash(e)
		prev = e.Hash
		out[i] = e
	}
	return out
}

// conflictBudget bounds how long one batch keeps being re-chained after
// losing the chain head to other writers. It is a time, not a count: under
// load from several replicas a replica far from the etcd leader may lose
// many times in a row, and each loss costs only a round trip; refusing its
// events after a fixed number of tries refused real actions (P8 saw it at
// 100). conflictBackoff caps the random pause before each retry after the
// first.
const (
	conflictBudget  = 15 * time.Second
	conflictBackoff = 20 * time.Millisecond
)

// commit chains batch onto the current tail and stores it.
//
// Another writer (a replica on the same store) may have appended since the
// tail was read: the store then refuses the batch with store.ErrConflict,
// having written nothing, and the batch is chained again onto the new tail
// (new seqs, new prev hashes) and retried, for up to conflictBudget,
// after a random pause. No event is answered before its write succeeded,
// so what is acknowledged is a committed, gap-free prefix of the chain.
//
// If the store says the batch is too big for one transaction (its
// estimate and ours disagree) and wrote nothing, the halves are committed
// one after the other instead, so one event too big for the store fails
// alone.
func (l *Log) commit(batch []*pending) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		evs, err := l.write(batch)
		if err == nil {
			return
		}
		first := l.lastSeq + 1
		conflict := errors.Is(err, store.ErrConflict)
		// Resync first: after a conflict the tail moved; after another
		// failure the store may have written the batch after all, and
		// the halves would be chained onto a stale tail.
		moved := l.resync(conflict)
		if !conflict && moved {
			// A store that does not say ErrConflict: another writer
			// appended if a foreign event holds our first seq; if our
			// own does, the failed write landed, and retrying would
			// store it twice.
			conflict = l.foreignAt(evs[0])
		}
		if conflict && time.Since(start) < conflictBudget {
			l.conflicts.Add(1)
			l.metrics.conflict()
			if attempt > 0 {
				time.Sleep(rand.N(conflictBackoff))
			}
			continue
		}
		if errors.Is(err, store.ErrTxnTooBig) && len(batch) > 1 && !moved {
			l.log.Warn("audit: batch too big for one store transaction; splitting it", "events", len(batch), "err", err)
			mid := len(batch) / 2
			l.commit(batch[:mid])
			l.commit(batch[mid:])
			return
		}
		// Nothing is acknowledged and the chain stays where it was, so the
		// next batch reuses these seqs.
		l.log.Error("audit: append failed", "events", len(batch), "first_seq", first, "attempts", attempt+1, "err", err)
		err = fmt.Errorf("audit: append: %w", err)
		l.metrics.failed(len(batch))
		for _, p := range batch {
			l.answer(p, err)
		}
		return
	}
}

// write chains batch onto the tail and stores it with one AppendEvents
// call; on success it advances the tail and answers every caller. It
// returns the chained events.
func (l *Log) write(batch []*pending) ([]store.Event, error) {
	// Not any caller's context: one caller giving up must not fail the
	// others' events, nor its own.
	ctx := context.Background()
	evs := chainBatch(batch, l.lastSeq, l.lastHash)
	if err := l.st.AppendEvents(ctx, evs); err != nil {
		return evs, err
	}
	l.lastSeq, l.lastHash = evs[len(evs)-1].Seq, evs[len(evs)-1].Hash
	l.metrics.stored(len(evs))
	for i, p := range batch {
		p.ev = evs[i]
		l.answer(p, nil)
	}
	return evs, nil
}

// chainBatch returns batch's events chained after seq and hash.
func chainBatch(batch []*pending, seq uint64, prev string) []store.Event {
	evs := make([]store.Event, len(batch))
	for i, p := range batch {
		evs[i] = p.ev
	}
	return ChainAfter(seq, prev, evs)
}

// answer delivers p's result. A failure whose caller already stopped
// waiting would be seen by no one: it is counted and logged as lost.
func (l *Log) answer(p *pending, err error) {
	if !p.state.CompareAndSwap(waiting, answered) && err != nil {
		l.Lost("write failed after its caller stopped waiting: "+err.Error(), p.ev)
	}
	p.result <- err
}

// resync reloads the tail after a failed write: after a conflict, another
// writer moved it; after another failure, the store may have written the
// batch after all (say, a sync error after the data reached the disk), and
// continuing from a stale tail would make every later write fail its gap
// check. It reports whether the tail moved.
func (l *Log) resync(conflict bool) bool {
	seq, hash, err := l.tail(context.Background())
	if err != nil || seq <= l.lastSeq {
		return false
	}
	if conflict {
		l.log.Debug("audit: another writer appended; re-chaining after it", "from", l.lastSeq, "to", seq)
	} else {
		l.log.Warn("audit: store holds events beyond the acknowledged tail; continuing from it",
			"acknowledged", l.lastSeq, "stored", seq)
	}
	l.lastSeq, l.lastHash = seq, hash
	return true
}

// tail returns the seq and hash that the next event chains onto: the last
// stored event's, else the checkpoint's (a log imported after archiving),
// else 0 and Genesis.
func (l *Log) tail(ctx context.Context) (uint64, string, error) {
	last, ok, err := l.st.LastEvent(ctx)
	if err != nil {
		return 0, "", err
	}
	if ok {
		return last.Seq, last.Hash, nil
	}
	if a, isArchive := l.st.(store.AuditArchive); isArchive {
		c, ok, err := a.Checkpoint(ctx)
		if err != nil {
			return 0, "", err
		}
		if ok {
			return c.Seq, c.Hash, nil
		}
	}
	return 0, Genesis, nil
}

// foreignAt reports whether the store holds, at e's seq, an event other
// than e (another writer's). When it cannot tell, it says no: the batch
// then fails rather than risk being stored twice.
func (l *Log) foreignAt(e store.Event) bool {
	foreign := false
	_ = l.st.ScanEvents(context.Background(), e.Seq, func(s store.Event) error {
		foreign = s.Seq == e.Seq && s.Hash != e.Hash
		return errFound
	})
	return foreign
}

var errFound = errors.New("found")

// Per-event JSON beyond the text of its fields: the field names and
// punctuation, a 20-digit seq, a 30-byte time, two 64-byte hashes (311
// bytes in all, rounded up), and per detail its quotes, colon and comma.
const (
	eventJSONOverhead  = 384
	detailJSONOverhead = 8
)

// encodedSize is an upper bound of the length of e's JSON encoding (as the
// store writes it), once chained. It errs high, never low: the batch bound
// rests on it.
func encodedSize(e store.Event) int {
	n := eventJSONOverhead + jsonLen(e.Actor) + jsonLen(e.Action) + jsonLen(e.Target) +
		jsonLen(e.Decision) + jsonLen(e.Reason)
	for k, v := range e.Details {
		n += detailJSONOverhead + jsonLen(k) + jsonLen(v)
	}
	return n
}

// jsonLen is the length of s as a JSON string body by encoding/json:
// control characters, '"', '\\' and HTML-sensitive characters escaped
// (counted as the longest escape, \u00XX), U+2028 and U+2029 escaped, and
// invalid bytes written as \ufffd.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				n += 6
			} else {
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}
