// Package audit keeps the bastion's tamper-evident audit trail on top of a
// store.AuditLog: the event model helpers, the hash chain, group commit and
// verification.
//
// # Chain
//
// Every event carries the hash of its predecessor (PrevHash; the first
// event's is Genesis, 64 zeros) and its own Hash, computed by Hash over a
// canonical encoding of every other field. Changing, removing or reordering
// any stored event therefore breaks the chain at that event, which Verify
// finds. After archiving, the chain starts at the checkpoint's hash. (Truncating the newest events cannot be detected from the log
// alone; export LastSeq and the last hash somewhere else to catch that.)
//
// # Group commit
//
// Log.Append hands the event to a single writer goroutine, which takes every
// append pending at that moment, assigns consecutive seqs, chains them,
// stores them with one AppendEvents call and only then answers each caller.
// Concurrent appenders thus share one durable write, and get distinct,
// gap-free seqs. A batch holds at most Options.MaxBatch events and never
// more than one store transaction holds: a store that is a TxnLimiter says
// how many events and how many encoded bytes that is, and the writer counts
// each event's JSON size conservatively. Should the store still answer
// store.ErrTxnTooBig, the batch is committed in halves, so an event the
// store cannot take fails alone. If the write fails otherwise, every caller
// in the batch gets the error and the chain does not advance: no event is
// acknowledged unless it is stored.
//
// # Several writers
//
// Replicas on one store (etcd) each run a Log on the same chain. A batch
// whose seqs another writer took first is refused by the store with
// store.ErrConflict, having written nothing; the writer re-reads the tail,
// chains the batch again after it (new seqs, new prev hashes) and retries,
// up to 100 times with a random pause. With a store that reports a plain
// failure instead, a retry happens only if a foreign event is seen at the
// batch's first seq, so a write that landed after all is never stored
// twice. Acknowledged events are thus a gap-free prefix of one chain.
//
// # Archive
//
// Archive writes the oldest events as a segment (a header, the events,
// a trailer with the head it ends on and a digest; see SegmentFormat),
// then stores a checkpoint on its last event and removes the archived
// events. Verify starts from the checkpoint; VerifySegment checks
// segments on their own and their link to the live log.
//
// # No action escapes the log
//
//   - An event is never refused for its size: Bound cuts oversized fields,
//     leaving a marker with the original's length and SHA-256, before the
//     event is hashed, so the stored event is what the chain covers.
//   - AppendAll validates each event on its own: an invalid one fails alone
//     (see BatchError), the others are stored.
//   - A caller's context does not cancel the write of its own event; the
//     caller waits up to Options.Grace past its context's end.
//   - An event that could not be stored for an action that already
//     happened is reported to Lost, which counts it (LostCount,
//     Options.LostEvents) and logs it at Error level.
package audit
