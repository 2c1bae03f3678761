// Package tuplecache is a read-through cache in front of a store.Tuples
// backend. The policy engine asks the same (object, relation) and (subject,
// type) questions over and over; badger answers each with a fresh iterator,
// and etcd with a network round trip, which costs far more than the graph
// walk itself.
//
// Correctness rules:
//   - Cached tuples are filtered by expiry on every hit, so an expired
//     tuple stops granting at once, as it does without the cache.
//   - A write through the cache forgets the entries of every object and
//     subject it touches, so this process reads its own writes at once.
//   - With Options.Feed (the store's change feed, store.Changes), every
//     replica's tuple writes forget what they touch when their change
//     arrives, and a model change or a reset forgets everything. The cache
//     caches only while it follows the feed: before the first watch and
//     after the feed closed, reads go to the store, until a new watch is
//     open.
//   - A read that began before an invalidation is returned but not kept
//     (a generation counter), so a grant another replica removed is never
//     served from a read that raced with its removal.
//   - MaxAge bounds how long any entry is served, as a fallback.
package tuplecache
