// Command bastion is the SSH bastion. It is wiring only: it reads the
// configuration, builds the store, the audit log, the authenticators and
// the server core, registers the feature modules, and shuts down gracefully.
package main
