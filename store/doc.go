// Package store defines what the bastion keeps: plain data types (users,
// keys, resources, tuples, sessions, audit events, server secrets) and small
// interfaces by role. Backends live in sub-packages; badger/ is the embedded
// default, etcd/ the shared store of replicated bastions, and storetest/ is
// the behaviour suite every backend must pass. Changes (changes.go) is the
// change feed through which a process learns of every write, its own and,
// on etcd, every other replica's.
//
// store imports nothing else of the bastion: every other package depends on
// it, never the other way round.
package store
