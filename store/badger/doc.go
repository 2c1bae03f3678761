// Package badger is the embedded default backend of the bastion's store,
// built on github.com/dgraph-io/badger/v4. It implements store.Store.
//
// # Durability
//
// The database is opened with SyncWrites, so every call that writes returns
// only after its transaction is on disk: an acknowledged write survives
// kill -9. Writes that read before they write (DeleteUser, PutKey) retry on
// badger's optimistic-concurrency conflicts.
//
// # Key layout
//
// Every record lives under a short prefix that names its role. Records are
// JSON, except the tuple index entries, whose key is the whole tuple and
// whose value is only its expiry (see below).
//
//	u/<user>                                  User (JSON)
//	k/<fingerprint>                           Key (JSON)
//	ku/<user>\x00<fingerprint>                index: keys of a user (empty value)
//	r/<resource>                              Resource (JSON)
//	s/<session id>                            Session (JSON)
//	kt/<token hash>                           KubeToken (JSON)
//	x/<secret name>                           raw secret bytes
//	e/<seq, 8 bytes big-endian>               Event (JSON)
//	to/<object>\x00<relation>\x00<subject>    tuple, by object   (value: expiry)
//	ts/<subject>\x00<object>\x00<relation>    tuple, by subject  (value: expiry)
//
// Names, fingerprints and tuple fields may not contain NUL, so the NUL
// separators are unambiguous and a prefix scan for "resource:web-1" can never
// return "resource:web-10". Objects are "type:id", so the subject index
// answers "tuples of subject S on objects of type T" with the prefix
// ts/S\x00T: — both directions of a policy check are prefix scans.
//
// # Tuples
//
// A tuple's expiry is stored as the value of both index entries: empty for
// "never", otherwise 12 bytes (big-endian Unix seconds, then nanoseconds).
// Every read compares it with the Clock and skips expired tuples, so expiry
// needs no sweeper; PurgeExpiredTuples removes dead entries when convenient.
//
// WriteTuples applies deletions then additions in one badger transaction, so
// the whole call is atomic. Only a call larger than one transaction can hold
// (badger.ErrTxnTooBig; with the default 64 MiB memtable that is roughly
// 100,000 index entries, i.e. some 50,000 tuples) is split into several
// transactions, committed in order; each is atomic, but a crash between them
// leaves a prefix of the call applied. Callers that need all-or-nothing must
// keep a single call below that size.
//
// # Change feed
//
// store.Changes is in process (changes.go): each write publishes its
// changes after its transaction committed, under the next revision
// (revisions count from 0 at every Open); a ring of the last 16,384
// changes serves Watch from a past revision, and a watch from before the
// ring starts with a reset. Audit events and recordings publish nothing.
//
// # Audit events
//
// Events are keyed by their big-endian seq, so key order is seq order; an
// event is one entry, with no index. AppendEvents checks, under a mutex,
// that the whole call continues the stored sequence without gaps, then
// writes it in durable transactions of at most TxnLimits each (derived from
// badger's MaxBatchSize and MaxBatchCount, with a margin; see eventtxn.go):
// a call within TxnLimits is one atomic transaction, a larger one several,
// committed in order, so a crash between them leaves a prefix stored. An
// event larger than one transaction is refused (store.ErrTxnTooBig) before
// anything is written. package audit sizes its group commits by TxnLimits,
// so its batches are always atomic. The last event is cached in memory for
// LastEvent.
//
// Scans are built for verifying millions of events: they iterate without
// value prefetch (event values are small enough to live inline in the LSM
// tree, where badger's per-item prefetch goroutine only costs time), and
// decode the JSON that json.Marshal wrote with a hand-written parser that
// hands anything unusual to encoding/json (see decodeEvent).
package badger
