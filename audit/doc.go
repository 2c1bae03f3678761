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
// finds. (Truncating the newest events cannot be detected from the log
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
