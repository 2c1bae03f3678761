// Package tuplecache is a read-through cache in front of a store.Tuples
// backend. The policy engine asks the same (object, relation) and (subject,
// type) questions over and over; badger answers each with a fresh iterator,
// which costs far more than the graph walk itself.
//
// Correctness rules: every write through the cache clears it, and cached
// tuples are filtered by expiry on every hit, so an expired tuple stops
// granting at once, as it does without the cache. Writes that bypass this
// process (a shared store written by another replica) are not seen until
// the next local write or MaxAge; MaxAge bounds that staleness.
package tuplecache
