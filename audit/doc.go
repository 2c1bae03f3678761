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
// append pending at that moment (up to Options.MaxBatch), assigns
// consecutive seqs, chains them, stores them with one AppendEvents call and
// only then answers each caller. Concurrent appenders thus share one durable
// write, and get distinct, gap-free seqs. If the write fails, every caller
// in the batch gets the error and the chain does not advance: no event is
// acknowledged unless it is stored.
package audit
