package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/sshbastion/bastion/store"
)

// Report is the outcome of Verify.
type Report struct {
	// OK is true when every stored event links correctly.
	OK bool
	// Count is how many events verified before the first broken link
	// (all of them when OK).
	Count uint64
	// LastSeq is the seq of the last event that verified (From if none
	// did).
	LastSeq uint64
	// BrokenSeq is the chain position where verification failed: the seq
	// the event there should have had. 0 when OK.
	BrokenSeq uint64
	// Reason says what is wrong at BrokenSeq.
	Reason string
	// From is the seq of the checkpoint verification started from, the
	// last archived event (0: from genesis), and FromHash its hash.
	From     uint64
	FromHash string `json:",omitempty"`
	// Unremoved counts stored events at or below the checkpoint: archived
	// (their segment holds them), but their removal was cut short. They
	// are skipped; the next archive removes them.
	Unremoved uint64 `json:",omitempty"`
}

// errBroken stops the scan at the first broken link.
var errBroken = errors.New("audit: chain broken")

// checkpointOf returns st's checkpoint, the zero one (genesis) if it has
// none or is no store.AuditArchive.
func checkpointOf(ctx context.Context, st store.AuditLog) (store.Checkpoint, error) {
	a, ok := st.(store.AuditArchive)
	if !ok {
		return store.Checkpoint{}, nil
	}
	c, ok, err := a.Checkpoint(ctx)
	if err != nil || !ok {
		return store.Checkpoint{}, err
	}
	return c, nil
}

// Verify walks the chain from its checkpoint (from genesis if nothing was
// archived) and checks, for each event, that its seq is the next one, that
// its PrevHash is the previous event's Hash (the checkpoint's hash for the
// first, Genesis without a checkpoint), and that its Hash matches its
// content. It reports the first failure. The error is for failures to read
// the log, not for a broken chain.
//
// An archive that runs meanwhile removes events the scan may not have
// reached yet: when the chain looks broken and the checkpoint moved, the
// walk starts again from the new one (twice at most).
func Verify(ctx context.Context, st store.AuditLog) (Report, error) {
	for attempt := 0; ; attempt++ {
		c, err := checkpointOf(ctx, st)
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		r, err := verifyFrom(ctx, st, c)
		if err != nil || r.OK || attempt == 2 {
			return r, err
		}
		if now, err := checkpointOf(ctx, st); err != nil || now.Same(c) {
			return r, nil
		}
	}
}

func verifyFrom(ctx context.Context, st store.AuditLog, c store.Checkpoint) (Report, error) {
	r := Report{From: c.Seq, FromHash: c.Hash, LastSeq: c.Seq}
	w := newWalk(&r, c, c.Seq+1, "")
	// Scan from 0, not from the checkpoint, so that a stray event stored
	// before seq 1 is reported rather than skipped.
	err := st.ScanEvents(ctx, 0, func(e store.Event) error {
		if c.Seq > 0 && e.Seq <= c.Seq {
			// Archived but not removed yet. The checkpoint must name
			// the event it was taken at.
			if e.Seq == c.Seq && e.Hash != c.Hash {
				return w.broken(c.Seq, "the checkpoint's hash %s is not that of event %d (%s)", c.Hash, c.Seq, e.Hash)
			}
			r.Unremoved++
			return nil
		}
		return w.next(e)
	})
	if err != nil && !errors.Is(err, errBroken) {
		return r, fmt.Errorf("audit: verify: %w", err)
	}
	// A log still being written may have grown past the scan's snapshot;
	// that is not a failure, so the store's LastEvent is not compared.
	r.OK = r.BrokenSeq == 0
	return r, nil
}

// walk checks events one after the other from seq want on, recording the
// first break and what verified in r. Verify and VerifyTail share it.
type walk struct {
	r    *Report
	c    store.Checkpoint
	prev string // the hash the next event must link to
	want uint64 // the seq the next event must have
	buf  []byte
}

// newWalk starts at seq want, linking to prev: "" means the chain's start
// (the checkpoint's hash, or Genesis without one).
func newWalk(r *Report, c store.Checkpoint, want uint64, prev string) *walk {
	if prev == "" {
		prev = Genesis
		if c.Seq > 0 {
			prev = c.Hash
		}
	}
	return &walk{r: r, c: c, prev: prev, want: want}
}

// broken records the break at seq at and stops the scan.
func (w *walk) broken(at uint64, reason string, args ...any) error {
	w.r.BrokenSeq, w.r.Reason = at, fmt.Sprintf(reason, args...)
	return errBroken
}

// next checks e, the next stored event, and advances past it.
func (w *walk) next(e store.Event) error {
	// Continuity: a missing, duplicated or renumbered event would
	// otherwise go unnoticed whenever the hashes were recomputed.
	if e.Seq != w.want {
		if e.Seq > w.want {
			return w.broken(w.want, "event %d is missing (next stored event has seq %d)", w.want, e.Seq)
		}
		return w.broken(w.want, "event at position %d has seq %d", w.want, e.Seq)
	}
	// Linkage: each event commits to its predecessor, so an event
	// cannot be removed or replaced without breaking its successor.
	if e.PrevHash != w.prev {
		if w.want == w.c.Seq+1 && w.c.Seq > 0 {
			return w.broken(w.want, "prev_hash %s does not match the checkpoint's hash (event %d, %s)", e.PrevHash, w.c.Seq, w.prev)
		}
		return w.broken(w.want, "prev_hash %s does not match the hash of event %d (%s)", e.PrevHash, w.want-1, w.prev)
	}
	// Content: the hash covers every other field, so editing any of
	// them (or the hash itself) shows here.
	w.buf = appendCanonical(w.buf[:0], e)
	if h := hashHex(w.buf); h != e.Hash {
		return w.broken(w.want, "content does not match its hash (stored %s, computed %s)", e.Hash, h)
	}
	w.prev = e.Hash
	w.r.Count++
	w.r.LastSeq = e.Seq
	w.want++
	return nil
}
