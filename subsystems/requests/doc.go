// Package requests is just-in-time access: a user files a request for act
// on Resources they may see or request; a reviewer of the Resources'
// project approves it (never their own), which writes an expiring grant of
// its own (group:request-ID, see grant.go: a standing act tuple the user
// holds is never overwritten or deleted), or denies it. Grants end at their
// TTL or when dropped, and the sessions they allowed end with them (the
// session sweeper re-checks act). It holds the logic only; the `request`
// command and the TUI call it.
package requests
