// Package stepup decides whether a session may open on the caller's login
// as it is, or needs a step-up: a recent, strong login.
//
// A strong login is one that shows a person was there: a FIDO2 security
// key (its signature asserts a touch), a certificate on one, or a login at
// the identity provider (the OIDC device flow at login, or `ssh bastion
// step-up` later). A plain key or certificate on disk is not one, however
// recent.
//
// A Requirement is a maximum age of the last strong login and, optionally,
// the acr values that satisfy it. Requirements come from the config (by
// session kind: ssh, tcp, kube, sftp; by project) and from the Resource
// itself; every one that applies must hold, so the strictest wins.
//
// The last strong login of a connection is the better of its own login
// and the step-up its key carries in the store (store.Key.Strong*), which
// every replica reads and which holds for step_up.remember after it was
// made. A session is checked when it opens, and again when it would
// outlive the login that satisfied it: then it needs a newer step-up, or
// it is cut (step_up_expired).
package stepup
