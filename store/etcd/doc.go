// Package etcd is the store.Store of replicated bastions: every replica
// opens the same etcd cluster and prefix, and etcd (go.etcd.io/etcd/
// client/v3) gives consensus, durability and the change feed. It passes
// the same store/storetest suite as package badger, whose semantics it
// keeps (tuple expiry at read time, the audit seq check, ErrNotFound
// cases, a key re-put under another user moving).
//
// # Key layout
//
// Every key starts with Options.Prefix ("/bastion/" by default), then a
// short role prefix. Values are JSON unless said otherwise; names may not
// contain NUL, so the NUL separators are unambiguous.
//
//	u/<user>                                  User
//	k/<fingerprint>                           Key
//	ku/<user>\x00<fingerprint>                index: keys of a user (empty)
//	r/<resource>                              Resource
//	s/<session id>                            Session
//	x/<secret name>                           raw secret bytes
//	to/<object>\x00<relation>\x00<subject>    tuple by object  (value: expiry)
//	ts/<subject>\x00<object>\x00<relation>    tuple by subject (value: expiry)
//	crl/<serial, 20 digits>                   CertRevocation
//	ar/<request id>                           AccessRequest
//	kt/<token hash>                           KubeToken
//	replicas/<replica id>                     a live replica, on its lease (replicas.go)
//	replica-reap/<replica id>/<lease>         reap lock of a dead replica (concurrency.Mutex)
//	mv/<version, 20 digits>                   ModelVersion
//	mvn                                       last model version (decimal)
//
// Bulk keys follow, after "~" (which sorts after every role prefix above):
// the change feed watches only the keys before "~", so the audit traffic
// and recordings of one replica are not sent to the others' feeds.
//
//	~e/<seq, 20 digits>                       audit Event, or a block: a JSON array of
//	                                          consecutive events from seq (blocks.go)
//	~eh                                       audit chain head: {"seq": N, "hash": H}
//	~ecp                                      audit checkpoint (eventarchive.go)
//	~ai/<writer id>/<20-digit counter>        an audit batch waiting for the sequencer
//	~ak/<writer id>/<20-digit counter>        its receipt, once chained (sequencer.go)
//	~seq/<lease>                              the sequencer's election (concurrency.Election)
//	~rec/<id>\x00<20-digit counter>.<part>    recording chunk (raw bytes)
//	~blob/<id>/<8-digit index>                a chunk of a large value
//
// A store whose audit head is at the old key eh (before the bulk keys
// moved) is refused at Open rather than read as an empty log.
//
// A tuple's expiry is the value of both index entries (empty for never,
// else 12 bytes: big-endian Unix seconds and nanoseconds) and is compared
// with the Clock at every read, exactly as in package badger.
//
// # Limits
//
// etcd refuses a request over 1.5 MiB and a transaction of over 128
// operations (its defaults). This package stays within 1 MiB of values and
// 100 operations (plus one) per transaction:
//   - AppendEvents writes at most TxnLimits() = (1 MiB, 100) events per
//     transaction, plus the head; an event over 1 MiB is refused whole
//     (store.ErrTxnTooBig).
//   - WriteTuples writes 50 tuples (100 index entries) per transaction: a
//     call of up to 50 distinct tuples is atomic, a larger one is several
//     transactions in order, as badger does past its own (larger) limit.
//   - DeleteUser removes the user with its first 49 keys atomically, the
//     rest in further transactions.
//   - A value over 512 KiB (a model, its secret copy) is stored as chunks
//     under ~blob/ and a manifest at its key (see blob.go); a recording
//     chunk over 512 KiB is stored in parts.
//
// # Concurrency between replicas
//
// Writes that read first compare mod revisions in their transaction and
// retry when another writer got there first: PutKey, DeleteKey,
// DeleteUser, AppendModel. AppendEvents does not retry: its transaction
// commits only if the chain head is the one it read, so two replicas can
// never both append after the same event; the loser gets ErrHeadMoved,
// with nothing of that transaction written, and re-chains its events after
// the new LastEvent. Every read is linearizable (etcd's default), and a
// write returns once a quorum committed it.
//
// The audit Log of every replica goes through AppendSequenced instead
// (audit.Sequencer): one elected replica chains every replica's waiting
// batches into one transaction, so replicas do not race for the head; see
// sequencer.go. The others hand it their batches over mutual TLS
// (seqforward.go, seqtls.go), or through their inbox keys when it cannot
// be reached.
//
// # Change feed
//
// Watch is an etcd watch of the records under the prefix (the keys
// before "~") from the revision after
// from, carried through reconnects by the client and, when a watch ends
// (the member lost its leader, a stream broke), reopened from the
// revision after the last one delivered. A revision etcd compacted away
// turns into a store.KindReset. Revisions are etcd's, identical on every
// replica. Index entries are no changes; audit events, the head,
// recordings and blob chunks lie outside the watched range. See store.Changes for what a consumer does.
package etcd
