package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sshbastion/bastion/store"
)

// ErrNothingToArchive is returned by Archive when no event qualifies; it
// has written nothing.
var ErrNothingToArchive = errors.New("audit: nothing to archive")

// ErrNoArchive is returned by Archive for a store that cannot archive
// (one that is no store.AuditArchive).
var ErrNoArchive = errors.New("audit: this store cannot archive events")

// ArchiveReport says what Archive wrote and removed.
type ArchiveReport struct {
	// FirstSeq..LastSeq are the archived events, Count of them; LastHash
	// is the head the segment ends on.
	FirstSeq, LastSeq uint64
	Count             uint64
	LastHash          string
	// Checkpoint is the live log's checkpoint afterwards.
	Checkpoint store.Checkpoint
	// Removed is how many events were removed from the store (more than
	// Count when an earlier removal had been cut short).
	Removed int
}

// Archive moves the oldest events out of the store: it writes to w, as one
// segment (see SegmentFormat), the longest run of events that follows the
// checkpoint (genesis if none) and whose times are all before before; then
// it puts a checkpoint on the segment's last event, and removes the
// archived events from the store. Verify then starts from the checkpoint,
// and VerifySegment links the segment to it.
//
// The last stored event is never archived: appends chain onto it. Every
// archived event is verified as it is written; a broken chain stops the
// archive before anything is removed, leaving a segment without trailer,
// which does not verify. Should another archive put its checkpoint first,
// this one fails with an error wrapping store.ErrConflict, having removed
// nothing: its segment must be discarded. Should the removal be cut short,
// the error says so; the checkpoint is in place, Verify skips what is left
// and the next Archive removes it.
//
// Appends go on meanwhile, on every replica: they are all after the
// archived events.
func Archive(ctx context.Context, st store.AuditLog, before time.Time, w io.Writer, now time.Time) (ArchiveReport, error) {
	var rep ArchiveReport
	a, ok := st.(store.AuditArchive)
	if !ok {
		return rep, ErrNoArchive
	}
	prev, had, err := a.Checkpoint(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: archive: %w", err)
	}
	if had {
		// Finish a removal that was cut short, so the scan below
		// starts where the segment must.
		if rep.Removed, err = a.DeleteEventsThrough(ctx, prev.Seq); err != nil {
			return rep, fmt.Errorf("audit: archive: remove the events archived before: %w", err)
		}
	}
	rep.Checkpoint = prev
	last, ok, err := st.LastEvent(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: archive: %w", err)
	}
	if !ok {
		return rep, ErrNothingToArchive
	}
	sw := newSegmentWriter(w)
	want, chain := prev.Seq+1, Genesis
	if had {
		chain = prev.Hash
	}
	var tail store.Event
	var buf []byte
	var stop = errors.New("stop")
	err = st.ScanEvents(ctx, want, func(e store.Event) error {
		if e.Seq >= last.Seq || !e.Time.Before(before) {
			return stop
		}
		if e.Seq != want || e.PrevHash != chain {
			return fmt.Errorf("the chain is broken at seq %d (found seq %d, prev_hash %s): nothing was archived; run audit verify", want, e.Seq, e.PrevHash)
		}
		buf = appendCanonical(buf[:0], e)
		if h := hashHex(buf); h != e.Hash {
			return fmt.Errorf("event %d does not match its hash: nothing was archived; run audit verify", e.Seq)
		}
		if rep.Count == 0 {
			rep.FirstSeq = e.Seq
			h := SegmentHeader{Kind: "header", Format: SegmentFormat, FirstSeq: e.Seq, PrevHash: e.PrevHash,
				Before: before.UTC(), Created: now.UTC()}
			if err := sw.line(h); err != nil {
				return err
			}
		}
		if err := sw.line(e); err != nil {
			return err
		}
		rep.Count++
		tail, chain = e, e.Hash
		want++
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		// The segment has no trailer: it cannot be mistaken for a
		// complete one.
		_ = sw.flush()
		return rep, fmt.Errorf("audit: archive: %w", err)
	}
	if rep.Count == 0 {
		return rep, ErrNothingToArchive
	}
	rep.LastSeq, rep.LastHash = tail.Seq, tail.Hash
	t := SegmentTrailer{Kind: "trailer", Count: rep.Count, LastSeq: tail.Seq, LastHash: tail.Hash,
		LastTime: tail.Time.UTC(), SHA256: sw.digest()}
	if err := sw.line(t); err != nil {
		return rep, fmt.Errorf("audit: archive: write the segment: %w", err)
	}
	if err := sw.flush(); err != nil {
		return rep, fmt.Errorf("audit: archive: write the segment: %w (nothing was removed)", err)
	}
	// Only now that the whole segment was handed over: the checkpoint,
	// then the removal.
	c := store.Checkpoint{Seq: tail.Seq, Hash: tail.Hash, Time: tail.Time.UTC(), Archived: now.UTC()}
	if err := a.PutCheckpoint(ctx, prev, c); err != nil {
		return rep, fmt.Errorf("audit: archive: the segment was written, but its checkpoint was not stored "+
			"(nothing was removed; discard the segment): %w", err)
	}
	rep.Checkpoint = c
	n, err := a.DeleteEventsThrough(ctx, c.Seq)
	rep.Removed += n
	if err != nil {
		return rep, fmt.Errorf("audit: archive: checkpoint stored at seq %d, but the removal stopped after %d events "+
			"(audit verify still passes; the next archive removes the rest): %w", c.Seq, n, err)
	}
	return rep, nil
}

// Archive archives the events before before to w; see the function
// Archive.
func (l *Log) Archive(ctx context.Context, before time.Time, w io.Writer) (ArchiveReport, error) {
	return Archive(ctx, l.st, before, w, l.clock())
}

// VerifySegment verifies segments read from r and their link to this
// log; see the function VerifySegment.
func (l *Log) VerifySegment(ctx context.Context, r io.Reader) (SegmentReport, error) {
	return VerifySegment(ctx, l.st, r)
}

// Verify verifies the stored chain; see the function Verify.
func (l *Log) Verify(ctx context.Context) (Report, error) { return Verify(ctx, l.st) }
