// Package etcdtest starts real etcd members on loopback for tests: the
// store/etcd suite and every package whose tests need a shared store
// (change feeds across replicas, replica leases). It is imported by tests
// only; it fails the test, never skips, when etcd is not installed.
package etcdtest
