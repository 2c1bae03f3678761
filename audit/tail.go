package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/sshbastion/bastion/store"
)

// DefaultTailEvents is how many of the newest events VerifyTail checks.
const DefaultTailEvents = 1000

// HeadKeeper is a store that records the chain head (the seq and hash of
// the last event appended) beside the events, in the same write, so that
// a log whose newest events were lost can be told from one that ends
// there.
type HeadKeeper interface {
	AuditHead(ctx context.Context) (seq uint64, hash string, ok bool, err error)
}

// VerifyTail checks the newest n events of st, as a start does before it
// appends: each has the next seq, links to the one before it (the event
// before the first checked, the checkpoint's hash, or Genesis) and matches
// its hash; and the stored head, if st keeps one, names the last stored
// event. It reports the first failure as Verify does (OK false, BrokenSeq,
// Reason, with full hashes). It is cheap where Verify reads everything:
// `audit verify` stays the full check. Events appended meanwhile by other
// replicas are checked too.
func VerifyTail(ctx context.Context, st store.AuditLog, n int) (Report, error) {
	if n <= 0 {
		n = DefaultTailEvents
	}
	c, err := checkpointOf(ctx, st)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify the tail: %w", err)
	}
	last, ok, err := st.LastEvent(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify the tail: %w", err)
	}
	r := Report{From: c.Seq, FromHash: c.Hash, LastSeq: c.Seq}
	if hk, keeps := st.(HeadKeeper); keeps {
		hseq, hhash, hok, err := hk.AuditHead(ctx)
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify the tail: %w", err)
		}
		// A head beyond the last stored event: the newest events are gone
		// (the head is written in the same transaction as they were).
		switch {
		case hok && (!ok && hseq > c.Seq || ok && hseq > last.Seq):
			stored := c.Seq
			if ok {
				stored = last.Seq
			}
			r.BrokenSeq = stored + 1
			r.Reason = fmt.Sprintf("the stored head says the log ends at event %d (hash %s), but the last stored event is %d: events %d-%d are missing",
				hseq, hhash, stored, stored+1, hseq)
			return r, nil
		case hok && ok && hseq == last.Seq && hhash != last.Hash:
			r.BrokenSeq = last.Seq
			r.Reason = fmt.Sprintf("the stored head names event %d with hash %s, but the stored event has hash %s", hseq, hhash, last.Hash)
			return r, nil
		}
	}
	if !ok {
		r.OK = true
		return r, nil
	}
	// The event before the first checked gives the hash to link to.
	first := c.Seq + 1
	if last.Seq >= uint64(n) && last.Seq-uint64(n)+1 > first {
		first = last.Seq - uint64(n) + 1
	}
	var w *walk
	from := first
	if first > c.Seq+1 {
		from = first - 1 // read its predecessor for its hash
	} else {
		w = newWalk(&r, c, first, "")
	}
	err = st.ScanEvents(ctx, from, func(e store.Event) error {
		if w == nil {
			if e.Seq != first-1 {
				w = newWalk(&r, c, first, "")
				return w.broken(first-1, "event %d is missing (next stored event has seq %d)", first-1, e.Seq)
			}
			w = newWalk(&r, c, first, e.Hash)
			return nil
		}
		return w.next(e)
	})
	if err != nil && !errors.Is(err, errBroken) {
		return r, fmt.Errorf("audit: verify the tail: %w", err)
	}
	if r.BrokenSeq == 0 && r.LastSeq < last.Seq {
		r.BrokenSeq = r.LastSeq + 1
		r.Reason = fmt.Sprintf("event %d is missing (the last stored event is %d)", r.LastSeq+1, last.Seq)
	}
	r.OK = r.BrokenSeq == 0
	return r, nil
}
