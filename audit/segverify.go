package audit

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sshbastion/bastion/store"
)

// How a verified segment relates to the live log (SegmentReport.Link).
const (
	// LinkCheckpoint: the live log's checkpoint is the segment's last
	// event, so the live log continues right after the segment.
	LinkCheckpoint = "checkpoint"
	// LinkLive: the segment's last event is still stored in the live log,
	// with the same hash (an archive whose removal did not happen).
	LinkLive = "live"
	// LinkOlder: the segment ends before the live log's checkpoint. It
	// links to the live log through the segments archived after it:
	// verify them together, concatenated oldest first.
	LinkOlder = "older"
)

// SegmentReport is the outcome of VerifySegment.
type SegmentReport struct {
	// OK is true when every segment verified on its own, each followed
	// the one before, and the last links to the live log (or, with
	// LinkOlder, precedes it).
	OK bool
	// Segments is how many segments verified; Count their events.
	Segments int
	Count    uint64
	// FirstSeq and PrevHash are where the first segment starts: PrevHash
	// is Genesis when FirstSeq is 1.
	FirstSeq uint64
	PrevHash string `json:",omitempty"`
	// LastSeq, LastHash and LastTime are the head the last segment that
	// verified ends on.
	LastSeq  uint64
	LastHash string    `json:",omitempty"`
	LastTime time.Time `json:",omitzero"`
	// Link says how the last segment relates to the live log (Link*
	// constants), "" if it was not checked or does not link.
	Link string `json:",omitempty"`
	// Checkpoint is the live log's checkpoint seq (0: none).
	Checkpoint uint64
	// Line is the input line where verification failed (1-based) and
	// BrokenSeq the seq expected there, if it was an event; Reason says
	// what is wrong. All zero when OK.
	Line      int    `json:",omitempty"`
	BrokenSeq uint64 `json:",omitempty"`
	Reason    string `json:",omitempty"`
}

// VerifySegment checks the segments read from r (one, or several
// concatenated oldest first): each on its own (header, the chain of its
// events, the trailer's head and digest), each following the one before,
// and, when st is not nil, the last one's link to the live log in st: the
// live log's checkpoint, or an event it still stores, must be the head the
// segment ends on. The error is for failures to read r or st, not for a
// segment that does not verify.
func VerifySegment(ctx context.Context, st store.AuditLog, r io.Reader) (SegmentReport, error) {
	var rep SegmentReport
	if err := readSegments(r, &rep); err != nil {
		return rep, fmt.Errorf("audit: read segment: %w", err)
	}
	if rep.Reason != "" || st == nil {
		rep.OK = rep.Reason == ""
		return rep, nil
	}
	if err := linkToLive(ctx, st, &rep); err != nil {
		return rep, fmt.Errorf("audit: verify segment: %w", err)
	}
	rep.OK = rep.Reason == ""
	return rep, nil
}

// linkToLive sets rep.Link, or rep.Reason if the segments do not link to
// the live log in st.
func linkToLive(ctx context.Context, st store.AuditLog, rep *SegmentReport) error {
	c, err := checkpointOf(ctx, st)
	if err != nil {
		return err
	}
	rep.Checkpoint = c.Seq
	at := func(seq uint64) (store.Event, bool, error) {
		var found store.Event
		ok := false
		err := st.ScanEvents(ctx, seq, func(e store.Event) error {
			found, ok = e, e.Seq == seq
			return errFound
		})
		if err == errFound {
			err = nil
		}
		return found, ok, err
	}
	switch {
	case rep.LastSeq < c.Seq:
		rep.Link = LinkOlder
	case rep.LastSeq == c.Seq:
		if c.Hash != rep.LastHash {
			rep.Reason = fmt.Sprintf("the live log's checkpoint at seq %d has hash %s, the segment ends on %s: they are different chains",
				c.Seq, c.Hash, rep.LastHash)
			return nil
		}
		// The live log's own verification checks the event after the
		// checkpoint; checking it here too makes this answer complete.
		next, ok, err := at(c.Seq + 1)
		if err != nil {
			return err
		}
		if ok && next.PrevHash != rep.LastHash {
			rep.Reason = fmt.Sprintf("the live log's event %d has prev_hash %s, the segment ends on %s", next.Seq, next.PrevHash, rep.LastHash)
			return nil
		}
		rep.Link = LinkCheckpoint
	default:
		e, ok, err := at(rep.LastSeq)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			last, _, err := st.LastEvent(ctx)
			if err != nil {
				return err
			}
			rep.Reason = fmt.Sprintf("the segment ends at seq %d, which the live log does not hold (checkpoint %d, last event %d)",
				rep.LastSeq, c.Seq, last.Seq)
		case e.Hash != rep.LastHash:
			rep.Reason = fmt.Sprintf("the live log's event %d has hash %s, the segment's %s: they are different chains",
				e.Seq, e.Hash, rep.LastHash)
		default:
			rep.Link = LinkLive
		}
	}
	return nil
}
