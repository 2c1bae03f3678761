package etcd

import "context"

// AuditHead returns the seq and hash of the chain head as its key holds
// them; ok is false on a log that never held an event, or whose head was
// written before heads kept the hash. A head that names no stored event
// (LastEvent fails then) means events were lost.
func (s *Store) AuditHead(ctx context.Context) (seq uint64, hash string, ok bool, err error) {
	h, rev, err := s.readHeadFull(ctx)
	if err != nil || rev == 0 || h.Hash == "" {
		return 0, "", false, err
	}
	return h.Seq, h.Hash, true, nil
}
