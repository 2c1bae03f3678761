package etcd

import (
	"context"
	"fmt"
)

// tailHash returns the hash to chain after seq, for a head written before
// heads kept it: the event's, or the checkpoint's on an imported log.
func (s *Store) tailHash(ctx context.Context, seq uint64) (string, error) {
	e, ok, err := s.LastEvent(ctx)
	if err != nil {
		return "", err
	}
	if ok && e.Seq == seq {
		return e.Hash, nil
	}
	c, ok, err := s.Checkpoint(ctx)
	if err != nil {
		return "", err
	}
	if ok && c.Seq == seq {
		return c.Hash, nil
	}
	return "", fmt.Errorf("etcd: audit head at seq %d names no event or checkpoint", seq)
}
