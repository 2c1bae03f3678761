package store

import (
	"context"
	"errors"
	"time"
)

// ErrConflict is wrapped by a write that lost to a concurrent writer and
// wrote nothing: an AuditLog.AppendEvents whose first seq another writer
// (another replica) already used, or whose chain head moved between its
// read and its commit; an AuditArchive.PutCheckpoint whose previous
// checkpoint is no longer the stored one. The caller reads again and
// retries: package audit re-reads LastEvent, re-chains its batch after it
// and appends again.
var ErrConflict = errors.New("conflict with a concurrent writer")

// Checkpoint is where the stored audit log starts once older events were
// archived (moved out of the store into a segment): the seq and hash of
// the last archived event. Verification starts from it instead of from
// the genesis hash, and the first stored event's PrevHash is Hash.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"` // of the last archived event
	// Archived is when the checkpoint was put.
	Archived time.Time `json:"archived"`
}

// Same reports whether c and o name the same chain position (Seq and
// Hash; times are informational).
func (c Checkpoint) Same(o Checkpoint) bool { return c.Seq == o.Seq && c.Hash == o.Hash }

// AuditArchive is the part of the audit log's storage that archiving
// needs: a checkpoint, and the removal of the events it covers. Archiving
// puts the checkpoint first and removes the events after, so a crash
// between the two leaves events at or below the checkpoint, which
// verification skips and the next removal takes.
type AuditArchive interface {
	// Checkpoint returns the stored checkpoint; ok is false if there is
	// none (nothing was ever archived).
	Checkpoint(ctx context.Context) (c Checkpoint, ok bool, err error)
	// PutCheckpoint replaces the checkpoint prev (the zero Checkpoint when
	// there is none) with c, atomically: if the stored checkpoint is not
	// prev (another archive ran), it writes nothing and returns an error
	// wrapping ErrConflict. Checkpoints only advance: c.Seq must be above
	// prev.Seq. On a log that holds events, c must name a stored event
	// other than the last one (c.Hash is compared with its Hash): the
	// last event stays, so appends always continue a stored event. On an
	// empty log without a checkpoint (an import of an archived log), c
	// sets where the log starts: the next append has seq c.Seq+1 and
	// PrevHash c.Hash.
	PutCheckpoint(ctx context.Context, prev, c Checkpoint) error
	// DeleteEventsThrough removes every stored event with a seq up to and
	// including seq, and returns how many it removed. It refuses a seq
	// beyond the checkpoint: only archived events are removed. It is
	// safe while events are appended (those are all above the
	// checkpoint), may run in several transactions, and removing again
	// is not an error.
	DeleteEventsThrough(ctx context.Context, seq uint64) (int, error)
}
