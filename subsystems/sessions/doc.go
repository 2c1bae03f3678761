// Package sessions keeps the bastion's mediated access sessions: each
// forward, shell or tunnel runs inside one. A Manager records sessions in
// the store, and a sweeper ends live ones on TTL expiry, idle timeout,
// revocation, or loss of the relation that granted them, closing their
// channels through the closer each session registered.
//
// Replicas: a session record names the replica holding its channels
// (store.Session.Replica). With Config.Feed the manager follows the
// store's change feed: a tuple, model or reset change re-checks every live
// session at once, and a record ended by another replica (sessions kill
// there writes it; see Kill) cuts the session here. With Config.Replicas
// it keeps a lease as its replica id, and ends the sessions of replicas
// whose lease expired as "replica lost", audited as session.lost, under a
// per-replica lock so that one survivor does it. Grants that expire write
// nothing, so the sweep's timer still ends those.
package sessions
