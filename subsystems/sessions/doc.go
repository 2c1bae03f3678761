// Package sessions keeps the bastion's mediated access sessions: each
// forward, shell or tunnel runs inside one. A Manager records sessions in
// the store, and a sweeper ends live ones on TTL expiry, idle timeout,
// revocation, or loss of the relation that granted them, closing their
// channels through the closer each session registered.
package sessions
