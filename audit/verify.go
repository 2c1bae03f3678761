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
	// LastSeq is the seq of the last event that verified.
	LastSeq uint64
	// BrokenSeq is the chain position where verification failed: the seq
	// the event there should have had. 0 when OK.
	BrokenSeq uint64
	// Reason says what is wrong at BrokenSeq.
	Reason string
}

// errBroken stops the scan at the first broken link.
var errBroken = errors.New("audit: chain broken")

// Verify walks the chain from its first event and checks, for each event,
// that its seq is the next one, that its PrevHash is the previous event's
// Hash (Genesis for the first), and that its Hash matches its content. It
// reports the first failure. The error is for failures to read the log,
// not for a broken chain.
func Verify(ctx context.Context, st store.AuditLog) (Report, error) {
	var r Report
	prev := Genesis
	want := uint64(1)
	var buf []byte
	broken := func(reason string, args ...any) error {
		r.BrokenSeq, r.Reason = want, fmt.Sprintf(reason, args...)
		return errBroken
	}
	// Scan from 0, not 1, so that a stray event stored before seq 1 is
	// reported rather than skipped.
	err := st.ScanEvents(ctx, 0, func(e store.Event) error {
		// Continuity: a missing, duplicated or renumbered event would
		// otherwise go unnoticed whenever the hashes were recomputed.
		if e.Seq != want {
			if e.Seq > want {
				return broken("event %d is missing (next stored event has seq %d)", want, e.Seq)
			}
			return broken("event at position %d has seq %d", want, e.Seq)
		}
		// Linkage: each event commits to its predecessor, so an event
		// cannot be removed or replaced without breaking its successor.
		if e.PrevHash != prev {
			return broken("prev_hash %.16s… does not match the hash of event %d (%.16s…)", e.PrevHash, want-1, prev)
		}
		// Content: the hash covers every other field, so editing any of
		// them (or the hash itself) shows here.
		buf = appendCanonical(buf[:0], e)
		if h := hashHex(buf); h != e.Hash {
			return broken("content does not match its hash (stored %.16s…, computed %.16s…)", e.Hash, h)
		}
		prev = e.Hash
		r.Count++
		r.LastSeq = e.Seq
		want++
		return nil
	})
	if err != nil && !errors.Is(err, errBroken) {
		return r, fmt.Errorf("audit: verify: %w", err)
	}
	// A log still being written may have grown past the scan's snapshot;
	// that is not a failure, so the store's LastEvent is not compared.
	r.OK = r.BrokenSeq == 0
	return r, nil
}
